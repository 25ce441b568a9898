"""The export cursor and line protocol without HTTP: holes left by transactions still in
flight (PostgreSQL hands out ids before commit), SQLite ids restarting, encoding rules.

The writer here is an in-memory stand-in (no InfluxDB 2 server exists in our registries; the
HTTP path is covered exactly in test_influx_sink.py and for real in the VictoriaMetrics test).
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from influxdb_client import Point, WritePrecision  # type: ignore[attr-defined]
from pydantic import ValidationError
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.settings import HubSettings
from hub.store.models import TelemetryPointRecord
from hub.store.telemetry_tables import TelemetrySinkCursor
from hub.telemetry.influx import ExportConfig, InfluxExporter
from hub.telemetry.influx_writer import InfluxWriter, retry_delay
from hub.telemetry.line_protocol import ExportPoint, UnencodablePoint, encode, timestamp_ns

T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


class MemoryWriter:
    """Collects lines like an always-accepting InfluxDB."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, lines: list[str]) -> None:
        self.lines.extend(lines)

    def close(self) -> None:
        pass


def exporter(sessions: async_sessionmaker[AsyncSession], grace_s: float = 30) -> InfluxExporter:
    writer = cast(InfluxWriter, MemoryWriter())
    return InfluxExporter(sessions, writer, ExportConfig(gap_grace_s=grace_s))


def point_row(i: int) -> dict[str, Any]:
    return {"station_id": "st-01", "device": "scale", "metric": "weight_g", "ts": T0,
            "value_num": float(i), "value_text": None, "historical": False}  # fmt: skip


async def cursor_of(sessions: async_sessionmaker[AsyncSession]) -> int | None:
    async with sessions() as session:
        return await session.scalar(
            select(TelemetrySinkCursor.last_id).where(TelemetrySinkCursor.name == "influx")
        )


@pytest.mark.asyncio
@pytest.mark.postgres
async def test_an_uncommitted_id_holds_the_cursor_until_it_commits_or_times_out(
    pg_sessions: async_sessionmaker[AsyncSession],
) -> None:
    sink = exporter(pg_sessions, grace_s=0.5)
    early, late = pg_sessions(), pg_sessions()
    await early.execute(insert(TelemetryPointRecord), [point_row(1)])  # id 1, not committed
    await late.execute(insert(TelemetryPointRecord), [point_row(2)])  # id 2
    await late.commit()

    assert await sink.drain() == 0  # id 2 is visible, id 1 is not: wait for it
    await early.commit()
    assert await sink.drain() == 2
    assert await cursor_of(pg_sessions) == 2

    doomed = pg_sessions()
    await doomed.execute(insert(TelemetryPointRecord), [point_row(3)])  # id 3, rolled back
    await doomed.rollback()
    async with pg_sessions.begin() as session:
        await session.execute(insert(TelemetryPointRecord), [point_row(4)])
    assert await sink.drain() == 0
    await asyncio.sleep(0.6)  # the grace period: id 3 is never coming
    assert await sink.drain() == 1
    assert await cursor_of(pg_sessions) == 4
    await early.close()
    await late.close()
    await doomed.close()


@pytest.mark.asyncio
async def test_two_exporters_never_move_the_cursor_backwards(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        await session.execute(insert(TelemetryPointRecord), [point_row(i) for i in range(10)])
    ahead, behind = exporter(sessions), exporter(sessions)
    await ahead.drain()
    await behind._commit(3, [])  # a slower hub finishing an older batch
    assert await cursor_of(sessions) == 10


@pytest.mark.asyncio
async def test_ids_handed_out_again_are_exported_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        await session.execute(insert(TelemetryPointRecord), [point_row(i) for i in range(5)])
    sink = exporter(sessions)
    await sink.drain()
    async with sessions.begin() as session:  # retention took everything the sink had
        await session.execute(delete(TelemetryPointRecord))
        await session.execute(insert(TelemetryPointRecord), [point_row(7)])
        new_id = await session.scalar(select(func.max(TelemetryPointRecord.id)))
    if new_id is not None and new_id > 5:
        pytest.skip("this database does not reuse ids (AUTOINCREMENT/sequence)")
    assert await sink.drain() == 1
    assert cast(MemoryWriter, sink.writer).lines[-1].startswith("benchfleet,device=scale")


# ---- line protocol --------------------------------------------------------------------------

NASTY = ["st 1", "a,b", "k=v", "tab\there", "new\nline", 'quote"d', "ünï"]


@pytest.mark.parametrize("tag", NASTY)
@pytest.mark.parametrize("text", [None, 'say "hi" \\ there', "multi\nline"])
def test_lines_match_the_official_client(tag: str, text: str | None) -> None:
    ts = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    point = ExportPoint(1, tag, tag, tag, ts, None if text else 3.25, text)
    assert encode(point) == official_line(tag, text, ts)


def official_line(tag: str, text: str | None, ts: datetime) -> str:
    """The same point built by influxdb-client's ``Point`` (untyped, hence Any)."""
    official: Any = Point("benchfleet")  # type: ignore[no-untyped-call]
    official = official.tag("station", tag).tag("device", tag).tag("metric", tag)
    official = official.field("text" if text else "value", text or 3.25)
    official = official.time(timestamp_ns(ts), WritePrecision.NS)
    return str(official.to_line_protocol())


def test_numbers_timestamps_and_refusals() -> None:
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    line = encode(ExportPoint(1, "s", "d", "m", ts, 3.0, None))
    assert line == "benchfleet,device=d,metric=m,station=s value=3 1767225600000000000"
    naive = datetime(2026, 1, 1, 0, 0, 0, 1)  # naive means UTC
    assert timestamp_ns(naive) == 1_767_225_600_000_001_000
    for bad, reason in [
        (ExportPoint(1, "s", "d", "m", ts, math.nan, None), "not finite"),
        (ExportPoint(1, "s", "d", "m", ts, None, None), "neither"),
        (ExportPoint(1, "s\\", "d", "m", ts, 1.0, None), "backslash"),
    ]:
        with pytest.raises(UnencodablePoint, match=reason):
            encode(bad)


def test_backoff_is_jittered_capped_and_honours_retry_after() -> None:
    delays = [retry_delay(9, base_s=1, cap_s=60, retry_after_s=None) for _ in range(200)]
    assert all(0 <= d <= 60 for d in delays)
    assert len({round(d, 3) for d in delays}) > 100  # jittered, not in lockstep
    assert retry_delay(0, base_s=1, cap_s=60, retry_after_s=7) >= 7


def test_production_refuses_the_default_influx_token() -> None:
    base: dict[str, Any] = {"environment": "production", "secret_key": "s" * 32,
            "api_keys": [{"name": "ops", "role": "admin", "key": "k" * 32}],
            "station_key_secret": "m" * 32}  # fmt: skip
    with pytest.raises(ValidationError, match="influx_token"):
        HubSettings(_env_file=None, influx_url="http://influx:8086", **base)
    ok = HubSettings(
        _env_file=None,
        influx_url="http://influx:8086",
        influx_token="t" * 40,
        **base,
    )
    assert "t" * 40 not in repr(ok)  # the token is a secret: never in a repr or a log line
