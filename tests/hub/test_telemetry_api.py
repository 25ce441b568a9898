"""GET /telemetry/ledger and GET /stations/{id}/telemetry (raw or rollups by range)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from hub.ingest import handle_message
from hub.telemetry.retention import roll_up
from protocol import topics
from protocol.codec import encode
from protocol.models import TelemetryBatch, TelemetryPoint

pytestmark = pytest.mark.asyncio
NOW = datetime.now(UTC).replace(second=0, microsecond=0)


async def _feed(app: FastAPI) -> None:
    sessions = app.state.runtime.sessions
    samples = [(NOW - timedelta(minutes=30, seconds=-10 * i), float(i)) for i in range(12)]
    points = [
        TelemetryPoint(device="scale", metric="weight_g", ts=ts, value=v) for ts, v in samples
    ]
    points.append(TelemetryPoint(device="laser", metric="state", ts=NOW, value="Idle"))
    points.append(TelemetryPoint(device="laser", metric="state", ts=NOW, value="x" * 999))
    batch = TelemetryBatch(station_id="st-a", epoch=1, seq=1, points=points)
    topic = topics.up("st-a", topics.Up.TELEMETRY)
    await handle_message(sessions, topic=topic, payload=encode(batch))
    async with sessions.begin() as session:
        await roll_up(session, now=NOW, limit=1000)


async def test_ledger_lists_each_station(hub_app: FastAPI, api: httpx.AsyncClient) -> None:
    await _feed(hub_app)
    (station,) = (await api.get("/telemetry/ledger")).json()
    assert station["station_id"] == "st-a"
    assert (station["points_received"], station["points_stored"]) == (14, 13)
    assert station["points_rejected"] == {"text_too_long": 1}
    assert station["points_unaccounted"] == 0
    anonymous = httpx.AsyncClient(transport=httpx.ASGITransport(app=hub_app), base_url="http://hub")
    async with anonymous:
        assert (await anonymous.get("/telemetry/ledger")).status_code == 401


async def test_series_raw_for_short_ranges_rollups_for_long(
    hub_app: FastAPI, api: httpx.AsyncClient
) -> None:
    await _feed(hub_app)
    url = "/stations/st-a/telemetry"
    (raw,) = (await api.get(url, params={"device": "scale", "metric": "weight_g"})).json()
    assert (raw["source"], raw["step_s"], len(raw["points"])) == ("raw", None, 12)
    assert raw["points"][0]["value"] == 0.0
    since = (NOW - timedelta(days=2)).isoformat()
    week = (await api.get(url, params={"metric": "weight_g", "since": since})).json()
    (rolled,) = week
    assert rolled["source"] == "rollup_1m"
    assert rolled["step_s"] % 60 == 0
    assert sum(p["count"] for p in rolled["points"]) == 12
    assert min(p["min"] for p in rolled["points"]) == 0.0
    assert max(p["max"] for p in rolled["points"]) == 11.0
    # Buckets count from `since`: give it (minute-aligned, like the samples) so the two sample
    # minutes fall in one 2-minute bucket whatever the wall clock says when the test runs.
    hour = {"since": (NOW - timedelta(hours=1)).isoformat(), "until": NOW.isoformat()}
    stepped = (await api.get(url, params={"step": 120, "device": "scale", **hour})).json()[0]
    assert stepped["source"] == "rollup_1m"
    assert stepped["step_s"] == 120
    assert [p["count"] for p in stepped["points"]] == [12]  # 12 samples 10 s apart: 2 minutes
    state = (await api.get(url, params={"device": "laser"})).json()[0]
    assert [p["text"] for p in state["points"]] == ["Idle"]
