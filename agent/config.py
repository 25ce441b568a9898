"""The station config: a TOML file validated by pydantic; every error names its field.

``BENCHFLEET_MQTT_URL`` overrides ``mqtt_url`` when set, so the demo and tests can point a
station at a private broker without rewriting its file.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from protocol.auth import KeyFileError, load_key_file
from protocol.broker_url import BrokerUrl, parse_broker_url
from protocol.models import Name, StationId

MQTT_URL_ENV = "BENCHFLEET_MQTT_URL"

Family = Literal["laser", "scale", "cleaner", "camera"]


class ConfigError(Exception):
    """The station config cannot be used; the message says which field and why."""


class DeviceConfig(BaseModel):
    """One device the station drives; ``options`` go to the backend as they are."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    family: Family
    backend: Name = "sim"
    url: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class StationConfig(BaseModel):
    """Everything one station agent needs to run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    station_id: StationId
    mqtt_url: str
    data_dir: Path
    keepalive_s: Annotated[int, Field(ge=2, le=60)] = 3
    # The most outbox messages sent but not yet acknowledged by the hub. paho silently
    # overwrites past 65,535 queued QoS 1 messages, so the outbox, not paho, is the buffer.
    inflight_window: Annotated[int, Field(ge=1, le=1000)] = 100
    resend_after_s: Annotated[float, Field(gt=0, le=3600)] = 5.0
    # Telemetry: every device and the station sampled each ``telemetry_sample_s``; the points
    # go to the outbox as one batch each ``telemetry_batch_s`` or at ``telemetry_batch_points``.
    telemetry_sample_s: Annotated[float, Field(ge=0.01, le=3600)] = 1.0
    telemetry_batch_s: Annotated[float, Field(ge=0.01, le=3600)] = 5.0
    telemetry_batch_points: Annotated[int, Field(ge=1, le=10_000)] = 1000
    # The old name of ``telemetry_batch_s`` (it was one sample per batch); still accepted.
    telemetry_interval_s: Annotated[float, Field(gt=0, le=3600)] = 5.0
    # After an outage the telemetry backlog goes out at this pace, behind job updates and events.
    backfill_batches_per_s: Annotated[float, Field(ge=0.1, le=10_000)] = 20.0
    # Disk budget of the outbox (agent/outbox.py): telemetry is shed first (above 60 % of
    # ``outbox_max_bytes`` of payloads, or below ``min_free_bytes`` free on the data disk),
    # events next (above 90 %, or below a quarter of the floor); job updates and proofs, the job's
    # evidence, are never refused by the budget.
    outbox_max_bytes: Annotated[int, Field(ge=64 * 1024, le=1 << 40)] = 512 * 1024 * 1024
    min_free_bytes: Annotated[int, Field(ge=0, le=1 << 40)] = 64 * 1024 * 1024
    # Prometheus /metrics on 127.0.0.1:<port> (0: any free port; None: off).
    metrics_port: Annotated[int | None, Field(ge=0, le=65_535)] = None
    metrics_host: str = "127.0.0.1"
    # The station screen (agent/screen, docs/station-screen.md) on <screen_host>:<screen_port>
    # (0: any free port, written to <data_dir>/screen.url; None: off). Localhost by default: the
    # kiosk browser runs on the station itself. Technicians are signed out after idle_signout_s.
    screen_port: Annotated[int | None, Field(ge=0, le=65_535)] = None
    screen_host: str = "127.0.0.1"
    screen_idle_signout_s: Annotated[float, Field(ge=5, le=24 * 3600)] = 15 * 60
    devices: list[DeviceConfig] = Field(default_factory=list, max_length=64)
    # Demo and test floors only: sign steps off as ``auto:<station>`` (the dossier shows that no
    # person signed). Real stations leave it off; the station screen brings technicians' sign-off.
    auto_signoff: bool = False
    # Who lets jobs go on: "auto" (at once, nobody at the bench; signs only with auto_signoff)
    # or "screen" (a signed-in technician acknowledges, readies, fires and signs off).
    operator: Literal["auto", "screen"] = "auto"
    # The technicians who may sign in (benchfleet station add-technician writes it);
    # default <data_dir>/technicians.toml.
    technicians: Path | None = None
    # Message authentication (docs/security.md): the station's key from `benchfleet station
    # enroll` ("<generation>:<hex>"). Set, every message is signed and the hub's must verify;
    # an assignment issued more than the window before the newest one held is a replay.
    key_file: Path | None = None
    assignment_replay_window_s: Annotated[float, Field(ge=1, le=7 * 86_400)] = 600.0

    @model_validator(mode="before")
    @classmethod
    def _old_telemetry_name(cls, raw: Any) -> Any:
        """``telemetry_interval_s`` alone sets the batch period, as it did before batching."""
        if isinstance(raw, dict) and "telemetry_batch_s" not in raw:
            old = raw.get("telemetry_interval_s")
            if isinstance(old, int | float) and not isinstance(old, bool):
                return {**raw, "telemetry_batch_s": old}
        return raw

    @field_validator("mqtt_url")
    @classmethod
    def _valid_broker_url(cls, value: str) -> str:
        try:
            parse_broker_url(value)
        except ValueError as err:
            # The reason quotes the URL: never let a password reach a terminal or a log.
            raise ValueError(str(err).replace(repr(value), repr(_redacted(value)))) from None
        return value

    @field_validator("devices")
    @classmethod
    def _unique_device_names(cls, value: list[DeviceConfig]) -> list[DeviceConfig]:
        names = [device.name for device in value]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"device names must be unique; repeated: {', '.join(duplicates)}")
        return value

    def message_key(self) -> tuple[bytes, int] | None:
        """``(key, generation)`` from ``key_file``; None without one (authentication off)."""
        return None if self.key_file is None else load_key_file(self.key_file)

    @property
    def technicians_path(self) -> Path:
        return self.technicians or self.data_dir / "technicians.toml"

    @property
    def broker(self) -> BrokerUrl:
        """The parsed broker URL (``str()`` hides the password)."""
        return parse_broker_url(self.mqtt_url)


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def load_station_config(path: Path) -> StationConfig:
    """Read and validate the station config at ``path``; raise :class:`ConfigError` if unusable."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: TOML syntax error: {err}") from err
    if env_url := os.environ.get(MQTT_URL_ENV):
        raw["mqtt_url"] = env_url
    try:
        config = StationConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(describe_errors(err)) from err
    try:
        config.message_key()  # a bad key file stops the agent here, with its reason
    except KeyFileError as err:
        raise ConfigError(f"key_file: {err}") from err
    return config


def describe_errors(err: ValidationError) -> str:
    """One line per problem: ``devices.0.family: Input should be ...``."""
    lines = []
    for problem in err.errors(include_url=False):
        where = ".".join(str(part) for part in problem["loc"]) or "config"
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}")
    return "\n".join(lines)
