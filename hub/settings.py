"""Hub settings from ``BENCHFLEET_*`` environment variables or a ``.env`` file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from protocol.broker_url import BrokerUrl, parse_broker_url

DEFAULT_SECRET = "changethis"  # noqa: S105 - the placeholder we refuse in production


class HubSettings(BaseSettings):
    """Everything the hub process needs; timings are in seconds."""

    model_config = SettingsConfigDict(
        env_prefix="BENCHFLEET_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: Literal["development", "production"] = "development"
    hub_id: str = Field(default="hub", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    data_dir: Path = Path("var/hub")
    database_url: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)  # 0: let the OS pick (demo, tests)
    secret_key: str = DEFAULT_SECRET
    mqtt_keepalive_s: int = Field(default=5, gt=0, le=3600)
    assignment_resend_s: float = Field(default=5, gt=0)
    ack_timeout_s: float = Field(default=60, gt=0)
    reassign_after_offline_s: float = Field(default=3, ge=0)
    sweep_interval_s: float = Field(default=1.0, gt=0)
    startup_grace_s: float = Field(default=5, ge=0)

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, value: str) -> str:
        parse_broker_url(value)  # raises ValueError naming the problem
        return value

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> HubSettings:
        # A placeholder secret is convenient on a laptop and a hole on a factory floor.
        if self.environment != "development" and self.secret_key == DEFAULT_SECRET:
            raise ValueError(
                f"secret_key is {DEFAULT_SECRET!r}: set BENCHFLEET_SECRET_KEY "
                f"for environment={self.environment!r}"
            )
        return self

    @property
    def broker(self) -> BrokerUrl:
        """The parsed broker URL (validated at construction)."""
        return parse_broker_url(self.mqtt_url)

    @property
    def effective_database_url(self) -> str:
        """``database_url``, or a SQLite file under ``data_dir``."""
        return self.database_url or f"sqlite:///{self.data_dir / 'hub.db'}"
