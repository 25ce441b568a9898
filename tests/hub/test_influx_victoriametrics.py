"""The InfluxDB sink for real: influxdb-client writing to VictoriaMetrics' /api/v2/write, the
points read back through /api/v1/export.

VictoriaMetrics is not InfluxDB (DESIGN §8), and this test says where it differs: it ignores
the bucket, names a series ``<measurement>_<field>`` (``benchfleet_value``), stores string
fields as 0 (``benchfleet_text``), and keeps millisecond timestamps. Everything else (tags,
values, the gzip body, the batches) is checked against what the sink sent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from benchfleet.broker import free_port
from hub.store.models import TelemetryPointRecord
from hub.telemetry.influx import ExportConfig, InfluxExporter
from hub.telemetry.influx_writer import InfluxTarget, InfluxWriter
from hub.telemetry.line_protocol import timestamp_ns

pytestmark = pytest.mark.slow
BINARY = "/usr/bin/victoria-metrics"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[str]:
    if not shutil.which(BINARY):
        pytest.skip(f"{BINARY} missing: apt-get install victoria-metrics (Makefile's packages)")
    port = free_port()
    process = subprocess.Popen(
        [BINARY, f"-storageDataPath={tmp_path / 'vm'}", f"-httpListenAddr=127.0.0.1:{port}",
         "-retentionPeriod=1y", "-loggerLevel=ERROR"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("victoria-metrics did not become healthy")


def _points(count: int) -> list[dict[str, Any]]:
    # Microseconds in every timestamp: VictoriaMetrics keeps milliseconds only.
    numeric = [
        {"station_id": f"st-0{i % 3 + 1}", "device": "laser", "metric": "power",
         "ts": T0 + timedelta(seconds=i, microseconds=123_456), "value_num": i * 0.5,
         "value_text": None, "historical": False}
        for i in range(count)
    ]  # fmt: skip
    text = [
        {"station_id": "st 4", "device": "cleaner", "metric": "state",
         "ts": T0 + timedelta(seconds=i), "value_num": None, "value_text": "heating",
         "historical": False}
        for i in range(5)
    ]  # fmt: skip
    return numeric + text


def _export(url: str, match: str) -> list[dict[str, Any]]:
    httpx.get(f"{url}/internal/force_flush", timeout=5)  # make fresh rows searchable now
    response = httpx.post(f"{url}/api/v1/export", data={"match[]": match}, timeout=10)
    response.raise_for_status()
    return [json.loads(line) for line in response.text.splitlines() if line]


@pytest.mark.asyncio
async def test_points_read_back_from_victoriametrics(
    sessions: async_sessionmaker[AsyncSession], victoria: str
) -> None:
    rows = _points(400)
    async with sessions.begin() as session:
        await session.execute(insert(TelemetryPointRecord), rows)
    writer = InfluxWriter(InfluxTarget(victoria, "any-token", "acme", "floor"))
    sink = InfluxExporter(sessions, writer, ExportConfig(batch_lines=150))
    assert await sink.drain() == 405
    await sink.stop()

    series = _export(victoria, '{__name__="benchfleet_value"}')
    got = {
        (s["metric"]["station"], ts, value)
        for s in series
        for ts, value in zip(s["timestamps"], s["values"], strict=True)
    }
    want = {
        (r["station_id"], timestamp_ns(r["ts"]) // 1_000_000, r["value_num"])
        for r in rows
        if r["value_num"] is not None
    }
    assert got == want  # every value, at its millisecond
    labels = {tuple(sorted(s["metric"].items())) for s in series}
    assert (("__name__", "benchfleet_value"), ("device", "laser"), ("metric", "power"),
            ("station", "st-01")) in labels  # fmt: skip
    assert not any("floor" in str(label) for label in labels)  # the bucket is dropped

    text = _export(victoria, '{__name__="benchfleet_text"}')
    assert [s["metric"]["station"] for s in text] == ["st 4"]
    assert text[0]["values"] == [0] * 5  # string fields become 0 in VictoriaMetrics
