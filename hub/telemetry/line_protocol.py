"""InfluxDB line protocol for stored telemetry points (the export schema, docs/telemetry.md).

One point becomes one line::

    benchfleet,device=laser,metric=power,station=st-01 value=12.5 1767225600000000000

Measurement ``benchfleet``; tags ``device``, ``metric``, ``station`` (sorted by key, as
InfluxDB's write guide asks); field ``value`` (float) for numbers and booleans (0/1), field
``text`` (string) for text values; timestamp in nanoseconds. Escaping follows influxdb-client's
own ``Point`` (tests compare both), so Grafana sees what the official client would write.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

MEASUREMENT = "benchfleet"
VALUE_FIELD = "value"
TEXT_FIELD = "text"

_ESCAPE_TAG = str.maketrans(
    {",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"}
)
_ESCAPE_STRING = str.maketrans({'"': r"\"", "\\": "\\\\"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class UnencodablePoint(ValueError):
    """A point line protocol cannot carry; the message is the reason recorded for it."""


@dataclass(frozen=True)
class ExportPoint:
    """The columns of one ``telemetry_points`` row the export needs."""

    id: int
    station_id: str
    device: str
    metric: str
    ts: datetime
    value_num: float | None
    value_text: str | None


def timestamp_ns(ts: datetime) -> int:
    """Nanoseconds since the epoch, exact (integer arithmetic; naive means UTC)."""
    aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    delta = aware - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _tag(key: str, value: str) -> str:
    if not value:
        raise UnencodablePoint(f"empty {key} tag")
    if value.endswith("\\"):
        # A trailing backslash would escape the separator after it.
        raise UnencodablePoint(f"{key} tag ends with a backslash")
    return f"{key}={value.translate(_ESCAPE_TAG)}"


def _float(value: float) -> str:
    if not math.isfinite(value):
        raise UnencodablePoint(f"value is not finite ({value})")
    text = str(float(value))
    return text.removesuffix(".0")  # like influxdb-client: 3.0 -> 3


def _fields(point: ExportPoint) -> str:
    fields = []
    if point.value_text is not None:
        fields.append(f'{TEXT_FIELD}="{point.value_text.translate(_ESCAPE_STRING)}"')
    if point.value_num is not None:
        fields.append(f"{VALUE_FIELD}={_float(point.value_num)}")
    if not fields:
        raise UnencodablePoint("point has neither a number nor a text value")
    return ",".join(fields)


def encode(point: ExportPoint) -> str:
    """The line of ``point``; raises :class:`UnencodablePoint` with the reason."""
    tags = ",".join(
        (
            _tag("device", point.device),
            _tag("metric", point.metric),
            _tag("station", point.station_id),
        )
    )
    return f"{MEASUREMENT},{tags} {_fields(point)} {timestamp_ns(point.ts)}"
