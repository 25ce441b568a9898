"""Hub settings from ``BENCHFLEET_*`` environment variables or a ``.env`` file."""

from __future__ import annotations

from dataclasses import replace
from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from protocol.broker_url import BrokerUrl, parse_broker_url

DEFAULT_SECRET = "changethis"  # noqa: S105 - the placeholder we refuse in production
# The documented development master secret of station message keys (docs/security.md):
# the demo and the tests derive their stations' keys from it. Refused outside development.
DEV_STATION_KEY_SECRET = "benchfleet-development-station-key-secret"  # noqa: S105
MIN_KEY_LENGTH = 24
Role = Literal["integrator", "technician", "engineer", "admin"]


class ApiKey(BaseModel):
    """One API key: who holds it and what it may do."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: Role
    key: str = Field(min_length=8, max_length=256)
    # Personal data (docs/security.md "Personal data"): a technician key bound to a station
    # sees the texts and photos of that station's jobs only; an engineer key with
    # reviewer=true sees them as a reviewer does.
    station: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    reviewer: bool = False


# Documented development keys (docs/api.md): the demo and the tests use them. Refused
# outside development, like the default secret.
DEV_API_KEYS = (
    ApiKey(name="dev-integrator", role="integrator", key="dev-integrator-key"),
    ApiKey(name="dev-technician", role="technician", key="dev-technician-key"),
    ApiKey(name="dev-engineer", role="engineer", key="dev-engineer-key"),
    ApiKey(name="dev-admin", role="admin", key="dev-admin-key"),
)


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
    # Auth: JSON list of {"name", "role", "key"} in BENCHFLEET_API_KEYS. Empty in development
    # means the documented DEV_API_KEYS.
    api_keys: list[ApiKey] = Field(default_factory=list)
    # Scheduling: a station holds at most this many open jobs, the rest wait at the hub in
    # earliest-deadline order (so a rush order overtakes work not yet handed out).
    max_open_jobs_per_station: int = Field(default=2, ge=1, le=100)
    # A running job silent for this long is timed_out (a person decides, never a retry).
    running_timeout_s: float = Field(default=3600, gt=0)
    # Published cut-offs (local time of `timezone`): orders after them are promised the next
    # working day. Opening hours bound the promise too.
    timezone: str = "Europe/Berlin"
    standard_cutoff: time = time(14, 0)
    rush_cutoff: time = time(16, 0)
    opening: time = time(8, 0)
    closing: time = time(18, 0)
    # Inspections weigh the piece when set (needs a calibrated scale at the station).
    inspection_weighs: bool = False
    # Alarms and dashboards (docs/dashboards.md). None: hub/data/alarm_rules.toml.
    alarm_rules_path: Path | None = None
    dashboards_enabled: bool = True
    dashboard_refresh_s: float = Field(default=2.0, ge=0.2, le=60)
    dashboard_window_s: int = Field(default=600, ge=60, le=86_400)
    # Telemetry (hub.telemetry, docs/telemetry.md "Hub side"). Raw points are kept this long,
    # then only their 1-minute rollups (and only once every enabled export sink has them).
    telemetry_raw_retention_h: float = Field(default=48, gt=0)
    telemetry_rollup_retention_d: float = Field(default=90, gt=0)
    telemetry_retention_every_s: float = Field(default=300, gt=0)
    telemetry_rollup_batch: int = Field(default=5_000, ge=100, le=1_000_000)
    # A seq gap is stuck once the station made no progress for this long (3x the agent's
    # default resend_after_s): then the hub asks for a resync, at most every interval.
    telemetry_gap_after_s: float = Field(default=15, gt=0)
    telemetry_resync_interval_s: float = Field(default=60, gt=0)
    # Proof photos: content-addressed files under proofs_dir (default: <data_dir>/proof-photos);
    # larger uploads are refused at their first chunk (protocol cap: PROOF_MAX_BYTES, 32 MiB).
    proofs_dir: Path | None = None
    proof_max_bytes: int = Field(default=32 * 1024 * 1024, ge=1, le=32 * 1024 * 1024)
    # A job waiting in verifying this long for its engraving proof photo moves to needs_review
    # (reason proof_timeout); a proof that arrives later is still stored and verified.
    proof_timeout_s: float = Field(default=900, gt=0)
    # Staged chunks of an upload that received no chunk for this long are removed (a completed
    # proof is never touched by this).
    proof_stage_max_age_s: float = Field(default=86_400, gt=0)
    # Personal data (hub.pii, docs/security.md "Personal data"): engraving texts and gift
    # messages of finished orders are replaced by their SHA-256 after pii_retention_days,
    # proof photo files deleted after proof_retention_days (hashes stay in the audit chain).
    pii_retention_days: float = Field(default=90, gt=0)
    proof_retention_days: float = Field(default=365, gt=0)
    pii_expiry_every_s: float = Field(default=3600, gt=0)
    # OCR verification runs in this many worker processes (the event loop never runs OCR).
    verify_workers: int = Field(default=1, ge=1, le=16)
    # InfluxDB v2 export (hub/telemetry/influx.py, docs/telemetry.md "InfluxDB export"): on
    # when influx_url is set. The SQL table buffers while InfluxDB is unreachable.
    influx_url: str | None = None
    influx_token: SecretStr = SecretStr(DEFAULT_SECRET)
    influx_org: str = Field(default="benchfleet", min_length=1)
    influx_bucket: str = Field(default="telemetry", min_length=1)
    influx_batch_lines: int = Field(default=5000, ge=1, le=10_000)
    influx_flush_s: float = Field(default=5, gt=0)
    influx_timeout_s: float = Field(default=10, gt=0)
    # Broker credentials of the hub (user `hub` in the ACL); override those in mqtt_url.
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    # Message authentication (protocol/auth.py, docs/security.md): every station message must
    # carry a valid MAC under the key derived from this master secret ("off": not checked;
    # only for tests of something else and for hubs whose stations are not enrolled yet).
    station_key_secret: SecretStr = SecretStr(DEV_STATION_KEY_SECRET)
    station_auth: Literal["required", "off"] = "required"

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

    @model_validator(mode="after")
    def _refuse_default_keys(self) -> HubSettings:
        if self.environment == "development":
            return self
        if not self.api_keys:
            raise ValueError("api_keys is empty: set BENCHFLEET_API_KEYS outside development")
        dev_keys = {key.key for key in DEV_API_KEYS}
        for key in self.api_keys:
            if key.key in dev_keys or len(key.key) < MIN_KEY_LENGTH:
                raise ValueError(
                    f"api key of {key.name!r} is a development default or shorter than "
                    f"{MIN_KEY_LENGTH} characters: refused for environment={self.environment!r}"
                )
        return self

    @model_validator(mode="after")
    def _refuse_default_influx_token(self) -> HubSettings:
        token = self.influx_token.get_secret_value()
        if self.environment != "development" and self.influx_url and token == DEFAULT_SECRET:
            raise ValueError(
                f"influx_token is {DEFAULT_SECRET!r}: set BENCHFLEET_INFLUX_TOKEN "
                f"for environment={self.environment!r}"
            )
        return self

    @model_validator(mode="after")
    def _refuse_default_station_secret(self) -> HubSettings:
        secret = self.station_key_secret.get_secret_value()
        if self.environment != "development" and (
            secret == DEV_STATION_KEY_SECRET or len(secret) < MIN_KEY_LENGTH
        ):
            raise ValueError(
                "station_key_secret is the development default or shorter than "
                f"{MIN_KEY_LENGTH} characters: set BENCHFLEET_STATION_KEY_SECRET "
                f"for environment={self.environment!r}"
            )
        return self

    @property
    def effective_api_keys(self) -> tuple[ApiKey, ...]:
        """The configured keys, or the documented development keys when none are set."""
        if self.api_keys or self.environment != "development":
            return tuple(self.api_keys)
        return DEV_API_KEYS

    @property
    def broker(self) -> BrokerUrl:
        """The parsed broker URL (validated at construction)."""
        url = parse_broker_url(self.mqtt_url)
        password = self.mqtt_password.get_secret_value() if self.mqtt_password else url.password
        return replace(url, username=self.mqtt_username or url.username, password=password)

    @property
    def effective_database_url(self) -> str:
        """``database_url``, or a SQLite file under ``data_dir``."""
        return self.database_url or f"sqlite:///{self.data_dir / 'hub.db'}"
