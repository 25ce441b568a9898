"""Seq gaps: detected, opened with a rate-limited resync once the station stops progressing,
closed when the missing seqs arrive - in the store, and over a real mosquitto."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import aiomqtt
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from support.auth import signed_properties

from benchfleet.broker import PrivateBroker
from hub.app import create_app
from hub.ingest import handle_message
from hub.settings import HubSettings
from hub.store.telemetry_tables import TelemetryGap
from hub.telemetry.gaps import missing_ranges, sweep_gaps
from protocol import topics
from protocol.codec import decode_as, encode
from protocol.models import Birth, Command, TelemetryBatch, TelemetryPoint, utcnow

Sessions = async_sessionmaker[AsyncSession]
SETTINGS = HubSettings(_env_file=None, telemetry_gap_after_s=10, telemetry_resync_interval_s=60)


def _batch(seq: int, station: str = "st-a") -> TelemetryBatch:
    point = TelemetryPoint(device="station", metric="cpu_percent", ts=utcnow(), value=seq)
    return TelemetryBatch(station_id=station, epoch=1, seq=seq, points=[point])


def _birth(station: str = "st-a") -> Birth:
    return Birth(station_id=station, bd_seq=1, epoch=1, agent_version="t", devices=[])


def test_missing_ranges_with_out_of_order_arrivals() -> None:
    assert missing_ranges(0, [1, 2, 3]) == (3, [])
    assert missing_ranges(0, [2, 5, 6, 9]) == (0, [(1, 1), (3, 4), (7, 8)])
    assert missing_ranges(4, [5, 7]) == (5, [(6, 6)])
    assert missing_ranges(7, []) == (7, [])


async def _send(sessions: Sessions, topic: topics.Up, message: Birth | TelemetryBatch) -> None:
    await handle_message(sessions, topic=topics.up("st-a", topic), payload=encode(message))


async def _gaps(sessions: Sessions) -> list[tuple[int, int, str, int]]:
    async with sessions() as session:
        rows = await session.scalars(select(TelemetryGap).order_by(TelemetryGap.id))
        return [(g.first_seq, g.last_seq, g.state, g.resyncs) for g in rows]


async def _sweep(sessions: Sessions, after_s: float) -> list[Command]:
    async with sessions.begin() as session:
        out = await sweep_gaps(
            session, now=utcnow() + timedelta(seconds=after_s), settings=SETTINGS
        )
    assert all(item.topic == topics.down("st-a", topics.Down.CMD) for item in out)
    return [item.message for item in out if isinstance(item.message, Command)]


@pytest.mark.asyncio
async def test_stuck_gap_gets_one_resync_per_interval_and_closes(sessions: Sessions) -> None:
    await _send(sessions, topics.Up.BIRTH, _birth())
    for seq in (1, 2, 4, 5):
        await _send(sessions, topics.Up.TELEMETRY, _batch(seq))
    assert await _sweep(sessions, 0) == []
    assert await _gaps(sessions) == [(3, 3, "pending", 0)]
    assert await _sweep(sessions, 5) == []  # not stuck yet
    (command,) = await _sweep(sessions, 11)
    assert command.kind == "resync"
    assert await _gaps(sessions) == [(3, 3, "open", 1)]
    assert await _sweep(sessions, 30) == []  # rate-limited
    assert [c.kind for c in await _sweep(sessions, 75)] == ["resync"]
    await _send(sessions, topics.Up.TELEMETRY, _batch(3))
    assert await _sweep(sessions, 76) == []
    assert await _gaps(sessions) == [(3, 3, "closed", 2)]


@pytest.mark.asyncio
async def test_a_gap_that_keeps_shrinking_is_not_stuck(sessions: Sessions) -> None:
    """A paced backfill fills the gap from below: progress, so no resync."""
    await _send(sessions, topics.Up.BIRTH, _birth())
    await _send(sessions, topics.Up.TELEMETRY, _batch(10))  # a newer event jumped the queue
    await _sweep(sessions, 0)
    for seq in range(1, 9):
        await _send(sessions, topics.Up.TELEMETRY, _batch(seq))
        assert await _sweep(sessions, 9 * seq) == []
    await _send(sessions, topics.Up.TELEMETRY, _batch(9))
    assert await _sweep(sessions, 100) == []
    assert await _gaps(sessions) == [(1, 9, "closed", 0)]


async def _publish_signed(station: aiomqtt.Client, topic: str, payload: bytes) -> None:
    """As st-a's agent publishes: signed with its key (the hub requires it)."""
    props = signed_properties("st-a", topic, payload)
    await station.publish(topic, payload, qos=1, properties=props)


@pytest.mark.broker
@pytest.mark.asyncio
async def test_hub_sends_resync_over_mqtt_and_the_ledger_shows_the_gap(tmp_path: Path) -> None:
    settings = HubSettings(
        _env_file=None,
        mqtt_url="mqtt://127.0.0.1:1",  # replaced below
        data_dir=tmp_path / "hub",
        sweep_interval_s=0.1,
        telemetry_gap_after_s=0.5,
        telemetry_resync_interval_s=30,
    )
    with PrivateBroker(tmp_path / "broker") as broker:
        app = create_app(settings.model_copy(update={"mqtt_url": broker.url}))
        transport = httpx.ASGITransport(app=app)
        headers = {"X-API-Key": "dev-engineer-key"}
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://hub", headers=headers) as api,
            aiomqtt.Client(
                broker.host, broker.port, identifier="st-a", protocol=aiomqtt.ProtocolVersion.V5
            ) as station,
        ):
            for _ in range(400):  # the hub must be subscribed before the station publishes
                if (await api.get("/health")).json()["mqtt_connected"]:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the hub did not connect to the broker within 20 s")
            await station.subscribe(topics.down("st-a", topics.Down.CMD), qos=1)
            publish = [(topics.Up.BIRTH, _birth()), (topics.Up.TELEMETRY, _batch(1))]
            publish.append((topics.Up.TELEMETRY, _batch(3)))  # seq 2 is lost
            started = asyncio.get_running_loop().time()
            for kind, message in publish:
                await _publish_signed(station, topics.up("st-a", kind), encode(message))
            async with asyncio.timeout(30):  # ~1 s here; generous for a loaded CI machine
                async for received in station.messages:
                    command = decode_as(Command, bytes(received.payload), topic="")
                    assert isinstance(command, Command)
                    command_kind = command.kind
                    break
            waited = asyncio.get_running_loop().time() - started
            print(f"resync after {waited:.2f} s (gap_after_s=0.5)")
            assert command_kind == "resync"
            await _publish_signed(
                station, topics.up("st-a", topics.Up.TELEMETRY), encode(_batch(2))
            )
            ledger: dict[str, object] = {}
            for _ in range(100):
                ledger = (await api.get("/telemetry/ledger")).json()[0]
                if ledger["gaps_closed"] == 1:
                    break
                await asyncio.sleep(0.1)
    assert ledger["gaps_closed"] == 1
    assert ledger["points_stored"] == 3
    assert ledger["points_unaccounted"] == 0
