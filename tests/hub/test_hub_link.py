"""HubLink against a real mosquitto: retained online state, assignment delivery, clean stop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import httpx
import pytest
from fastapi import FastAPI
from support.auth import signed_properties, station_key

from benchfleet.broker import PrivateBroker
from hub.app import create_app
from hub.settings import HubSettings
from protocol import auth, topics
from protocol.codec import decode_as, decode_hub_state, encode
from protocol.models import Birth, DeviceInfo, HubState, JobAssignment

pytestmark = [pytest.mark.broker, pytest.mark.asyncio]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    with PrivateBroker(tmp_path / "broker") as running:
        yield running


async def _hub_state(broker: PrivateBroker) -> HubState:
    """The retained hub state, as a station that just connected would see it."""
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe(topics.HUB_STATE, qos=1)
        async for message in client.messages:
            state = decode_hub_state(bytes(message.payload))  # type: ignore[arg-type]
            assert isinstance(state, HubState), state
            return state
    raise AssertionError("no retained hub state")


async def _wait_connected(app: FastAPI, client: httpx.AsyncClient) -> None:
    for _ in range(200):  # up to 10 s: covers a few jittered reconnect delays
        if (await client.get("/health")).json()["mqtt_connected"]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("hub did not connect to the broker")


async def test_hub_online_state_assignment_and_offline_on_stop(
    broker: PrivateBroker, tmp_path: Path
) -> None:
    settings = HubSettings(
        _env_file=None,  # type: ignore[call-arg]
        hub_id="hub-smoke",
        mqtt_url=broker.url,
        data_dir=tmp_path / "hub",
        sweep_interval_s=0.1,
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=transport, base_url="http://hub", headers={"X-API-Key": "dev-admin-key"}
        ) as client,
        aiomqtt.Client(
            broker.host, broker.port, identifier="st-a", protocol=aiomqtt.ProtocolVersion.V5
        ) as station,
    ):
        await _wait_connected(app, client)
        assert (await _hub_state(broker)).online
        await station.subscribe(topics.down_filter("st-a"), qos=1)
        devices = [DeviceInfo(name="l", family="laser"), DeviceInfo(name="c", family="camera")]
        birth = Birth(station_id="st-a", bd_seq=1, epoch=1, agent_version="smoke", devices=devices)
        birth_topic, payload = topics.up("st-a", topics.Up.BIRTH), encode(birth)
        props = signed_properties("st-a", birth_topic, payload)
        await station.publish(birth_topic, payload, qos=1, properties=props)
        line = {
            "piece": {
                "sku": "RING-14K-6",
                "serial": "SN1",
                "metal": "gold",
                "declared_value": {"amount": 100},
            },
            "engraving": {"text": "Hi", "template": "ring_band"},
        }
        order = {"external_id": "smoke-1", "lines": [line]}
        for _ in range(100):  # the birth is processed asynchronously
            stations = (await client.get("/stations")).json()
            if stations and stations[0]["online"]:
                break
            await asyncio.sleep(0.05)
        created = (await client.post("/orders", json=order)).json()
        async with asyncio.timeout(5):
            async for message in station.messages:
                assignment = decode_as(JobAssignment, bytes(message.payload), topic="")  # type: ignore[arg-type]
                assert isinstance(assignment, JobAssignment), assignment
                mac = auth.read_properties(message.properties.UserProperty)  # type: ignore[union-attr]
                signed = auth.verify(
                    station_key("st-a"),
                    message.topic.value,
                    bytes(message.payload),
                    mac.mac,  # type: ignore[arg-type]
                )
                break
        assert str(assignment.job_id) == created["jobs"][0]["job_id"]
        assert assignment.version == 2
        assert signed, "the hub signs what it sends with the station's key"
        assert assignment.engraving is not None
        assert assignment.engraving.text == "Hi"
        # The link survives a broker restart (persistent session, jittered reconnect).
        await asyncio.to_thread(broker.restart)
        await asyncio.sleep(0.2)
        await _wait_connected(app, client)
    assert not (await _hub_state(broker)).online
