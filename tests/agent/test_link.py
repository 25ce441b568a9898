"""The MQTT link against a real mosquitto: presence, delivery until the hub's Ack, the window.

The "hub" here is a plain aiomqtt client in the test that sees what the station publishes and
answers with Acks when the test says so.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import pytest_asyncio

from agent.db import open_db
from agent.main import serve
from agent.outbox import Outbox
from benchfleet.broker import PrivateBroker
from protocol import codec, encode, topics
from protocol.models import Ack, AckOutcome, Birth, Death, Event, HubState, utcnow

pytestmark = pytest.mark.broker

STATION = "st-01"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    with PrivateBroker(tmp_path / "broker") as running:
        yield running


class Hub:
    """What the station publishes, by kind; sends Acks and hub state on request."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.seen: list[tuple[str, Any]] = []
        self.auto_ack = False

    async def listen(self) -> None:
        async for message in self.client.messages:
            assert isinstance(message.payload, bytes)
            decoded = codec.decode(message.topic.value, message.payload)
            assert not isinstance(decoded, codec.Rejection), decoded.reason
            self.seen.append((decoded.topic.kind, decoded.message))
            if self.auto_ack and hasattr(decoded.message, "seq"):
                await self.ack(decoded.message)

    def of(self, kind: str) -> list[Any]:
        return [message for seen_kind, message in self.seen if seen_kind == kind]

    async def ack(self, message: Any) -> None:
        ack = Ack(epoch=message.epoch, seq=message.seq, outcome=AckOutcome.ACCEPTED)
        await self.client.publish(topics.down(STATION, topics.Down.ACK), encode(ack), qos=1)

    async def state(self, online: bool) -> None:
        state = HubState(hub_id="test-hub", online=online, since=utcnow())
        await self.client.publish(topics.HUB_STATE, encode(state), qos=1, retain=True)


@pytest_asyncio.fixture
async def hub(broker: PrivateBroker) -> AsyncIterator[Hub]:
    async with aiomqtt.Client(broker.host, broker.port, identifier="test-hub") as client:
        await client.subscribe(topics.up_filter(STATION), qos=1)
        fake = Hub(client)
        task = asyncio.create_task(fake.listen())
        yield fake
        task.cancel()


def config_file(tmp_path: Path, broker: PrivateBroker, **extra: Any) -> Path:
    lines = [
        f'station_id = "{STATION}"',
        f'mqtt_url = "{broker.url}"',
        f'data_dir = "{tmp_path / "station"}"',
        "telemetry_interval_s = 3600",
        *(f"{key} = {value}" for key, value in extra.items()),
        '[[devices]]\nname = "laser-1"\nfamily = "laser"',
        '[[devices]]\nname = "camera-1"\nfamily = "camera"',
    ]
    path = tmp_path / "station.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def until(probe: Any, seconds: float = 10.0) -> Any:
    async with asyncio.timeout(seconds):
        while not (result := probe()):  # noqa: ASYNC110 - polling what a test observes
            await asyncio.sleep(0.01)
    return result


def preload_events(data_dir: Path, count: int) -> None:
    """Events left in the outbox by an earlier run (its epoch is 1)."""
    outbox = Outbox(open_db(data_dir), STATION, resend_after_s=5)
    for _ in range(count):
        outbox.enqueue(
            topics.Up.EVENT, lambda e, s: Event(station_id=STATION, epoch=e, seq=s, kind="t")
        )


class Agent:
    """The agent in this process (agent.main.serve) until :meth:`stop`."""

    def __init__(self, path: Path) -> None:
        from agent.config import load_station_config

        self.config = load_station_config(path)
        self.stopping = asyncio.Event()
        self.task = asyncio.create_task(serve(self.config, self.stopping))

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.wait_for(self.task, 10)


@pytest.mark.asyncio
async def test_birth_then_death_with_the_same_bd_seq(
    tmp_path: Path, broker: PrivateBroker, hub: Hub
) -> None:
    for expected_bd_seq in (1, 2):
        agent = Agent(config_file(tmp_path, broker))
        birth = (await until(lambda n=expected_bd_seq: hub.of("birth")[n - 1 :]))[0]
        assert isinstance(birth, Birth)
        assert birth.bd_seq == expected_bd_seq
        assert birth.epoch == expected_bd_seq
        assert [d.family for d in birth.devices] == ["laser", "camera"]
        await agent.stop()
        death = (await until(lambda n=expected_bd_seq: hub.of("death")[n - 1 :]))[0]
        assert isinstance(death, Death)
        assert death.bd_seq == expected_bd_seq


@pytest.mark.asyncio
async def test_sigkill_makes_the_broker_publish_the_will(
    tmp_path: Path, broker: PrivateBroker, hub: Hub
) -> None:
    env = {**os.environ, "BENCHFLEET_MQTT_URL": broker.url}
    argv = [sys.executable, "-m", "benchfleet", "agent", "-c", str(config_file(tmp_path, broker))]
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        birth = (await until(lambda: hub.of("birth"), seconds=20))[0]
        process.send_signal(signal.SIGKILL)
        death = (await until(lambda: hub.of("death"), seconds=5))[0]
        assert (death.bd_seq, death.epoch) == (birth.bd_seq, birth.epoch)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


@pytest.mark.asyncio
async def test_outbox_resends_until_the_hub_acks(
    tmp_path: Path, broker: PrivateBroker, hub: Hub
) -> None:
    preload_events(tmp_path / "station", 1)
    agent = Agent(config_file(tmp_path, broker, resend_after_s=0.3))
    copies = await until(lambda: len(hub.of("event")) >= 3 and hub.of("event"))
    assert {(m.epoch, m.seq) for m in copies} == {(1, 1)}  # the same message, re-sent as is
    await hub.ack(copies[0])
    await until(lambda: events_waiting(tmp_path) == 0)
    count = len(hub.of("event"))
    await asyncio.sleep(0.8)
    assert len(hub.of("event")) == count  # acked: never sent again
    await agent.stop()


def events_waiting(tmp_path: Path) -> int:
    db = open_db(tmp_path / "station")
    try:
        return int(db.execute("SELECT count(*) FROM outbox WHERE kind = 'event'").fetchone()[0])
    finally:
        db.close()


@pytest.mark.asyncio
async def test_inflight_window_is_never_exceeded(
    tmp_path: Path, broker: PrivateBroker, hub: Hub
) -> None:
    preload_events(tmp_path / "station", 20)
    agent = Agent(config_file(tmp_path, broker, inflight_window=5, resend_after_s=0.5))
    await until(lambda: len(hub.of("event")) >= 5)
    await asyncio.sleep(1.2)  # long enough for re-sends, none of them acknowledged
    distinct = {(m.epoch, m.seq) for m in hub.of("event")}
    assert distinct == {(1, seq) for seq in range(1, 6)}
    hub.auto_ack = True
    for message in list(hub.of("event")):
        await hub.ack(message)
    await until(lambda: len({(m.epoch, m.seq) for m in hub.of("event")}) == 20)
    await until(lambda: events_waiting(tmp_path) == 0)
    await agent.stop()


@pytest.mark.asyncio
async def test_rebirth_when_the_hub_comes_back_and_dead_letters_kept(
    tmp_path: Path, broker: PrivateBroker, hub: Hub
) -> None:
    await hub.state(online=False)
    agent = Agent(config_file(tmp_path, broker))
    await until(lambda: hub.of("birth"))
    await hub.state(online=True)
    await until(lambda: len(hub.of("birth")) == 2)
    await hub.client.publish(topics.down(STATION, topics.Down.JOB), b"{not json", qos=1)
    await hub.client.publish(topics.HUB_STATE, b'{"v": 7}', qos=1)

    def letters() -> list[tuple[str, str]]:
        db = open_db(tmp_path / "station")
        try:
            return db.execute("SELECT topic, reason FROM dead_letters").fetchall()
        finally:
            db.close()

    rows = await until(lambda: len(letters()) == 2 and letters())
    assert {topic for topic, _ in rows} == {topics.down(STATION, topics.Down.JOB), topics.HUB_STATE}
    assert all(reason for _, reason in rows)
    await hub.state(online=False)  # clear the retained state
    await agent.stop()
    assert not agent.task.exception()
