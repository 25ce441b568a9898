"""Bad input on every topic the hub reads, through hub.ingest.handle_message on a real SQLite:
generated garbage, broken JSON, valid messages with one field broken, edge values, garbage
topics; oversized messages; messages from stations the hub never saw.

The rule checked for every example: handle_message never raises; a payload the codec refuses
becomes exactly one dead_letters row and one rejected-counter increment; a payload it accepts
gets an Ack (accepted or rejected with a reason) and no dead letter.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub import proofs
from hub.dispatch import Outgoing
from hub.ingest import handle_message
from hub.metrics import MESSAGES_REJECTED
from hub.proofs import ProofConfig, configure
from hub.store import create_hub_engine, session_factory, upgrade_to_head
from hub.store.models import DeadLetter, Station
from protocol import topics
from protocol.codec import MAX_PAYLOAD_BYTES, Rejection, decode
from protocol.models import Ack, AckOutcome

STATION = "st-fuzz"
UP_KINDS = ["birth", "death", "job", "event", "telemetry", "proof"]
EXAMPLES = 200  # per topic kind: 1,400 messages in about 25 s on SQLite
NOW = "2026-01-02T03:04:05+00:00"
PHOTO = b"\x89PNG fuzz"


def valid(kind: str, station: str = STATION) -> dict[str, Any]:
    """A payload the hub accepts on ``kind`` (the base the mutations break)."""
    head = {"v": 1, "station_id": station, "epoch": 1, "seq": 1, "sent_at": NOW}
    bodies: dict[str, dict[str, Any]] = {
        "birth": {"v": 1, "station_id": station, "bd_seq": 0, "epoch": 1,
                  "agent_version": "1.0", "devices": [{"name": "laser", "family": "laser"}],
                  "sent_at": NOW},
        "death": {"v": 1, "station_id": station, "bd_seq": 0, "epoch": 1},
        "job": {**head, "job_id": str(uuid.UUID(int=7)), "expected_version": 1,
                "status": "acknowledged", "evidence": []},
        "event": {**head, "kind": "door_open", "severity": "info", "message": "m",
                  "data": {"k": 1}},
        "telemetry": {**head, "points": [{"device": "laser", "metric": "temp_c", "ts": NOW,
                                          "value": 21.5}]},
        "proof": {**head, "proof_sha256": hashlib.sha256(PHOTO).hexdigest(), "index": 0,
                  "count": 1, "total_bytes": len(PHOTO), "content_type": "image/png",
                  "data": base64.b64encode(PHOTO).decode()},
    }  # fmt: skip
    return bodies[kind]


def up(kind: str, station: str = STATION) -> str:
    return f"bf/v1/st/{station}/up/{kind}"


# ---- strategies ----------------------------------------------------------------------------

ZONES = [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]
edge_datetimes = st.datetimes(
    min_value=datetime(1, 1, 1),
    max_value=datetime(9999, 12, 31, 23, 59),
    timezones=st.sampled_from(ZONES),
).map(datetime.isoformat)
edge_ints = st.sampled_from([0, -1, 1, 2**31, 2**53, 2**63, 2**64, -(2**63) - 1, 10**30])
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | edge_ints
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | edge_datetimes
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


@st.composite
def broken_message(draw: st.DrawFn, kind: str) -> bytes:
    """A valid message of ``kind`` with one or two fields replaced, dropped, added or nested."""
    body = valid(kind)
    for _ in range(draw(st.integers(1, 2))):
        key = draw(st.sampled_from(sorted(body)))
        action = draw(st.sampled_from(["replace", "drop", "add", "nest"]))
        if action == "replace":
            body[key] = draw(json_values)
        elif action == "drop":
            body.pop(key, None)
        elif action == "add":
            body[draw(st.text(min_size=1, max_size=12))] = draw(json_values)
        elif isinstance(body.get(key), list) and body[key]:
            body[key][0] = draw(json_values)  # one element of a list (devices, points)
        if not body:
            break
    return dumps(body)


def payloads(kind: str) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=300),
        st.text(max_size=200).map(str.encode),
        json_values.map(dumps),
        broken_message(kind),
        broken_message(kind),  # twice the weight: the closest to what a buggy agent sends
    )


station_ids = st.text(max_size=20) | st.sampled_from(["", "+", "#", "a/b", "st-1", "ST 1", "é"])
garbage_topics = st.one_of(
    st.text(max_size=80),
    st.builds("bf/v1/st/{}/up/{}".format, station_ids, st.text(max_size=12)),
    st.builds("bf/v1/st/{}/down/{}".format, st.just(STATION), st.sampled_from(["job", "cmd"])),
    st.builds("bf/v2/st/{}/up/{}".format, st.just(STATION), st.sampled_from(UP_KINDS)),
    st.builds("bf/v1/st/{}/up/{}".format, station_ids, st.sampled_from(UP_KINDS)),
)  # fmt: skip


# ---- harness -------------------------------------------------------------------------------


class Hub:
    """A migrated SQLite store and one event loop for many examples."""

    def __init__(self, root: Path) -> None:
        url = f"sqlite:///{root / 'hub.db'}"
        upgrade_to_head(url)
        configure(ProofConfig(proofs_dir=root / "proofs", max_bytes=1024))
        self.loop = asyncio.new_event_loop()
        self.engine = create_hub_engine(url)
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(self.engine)

    def run(self, topic: str, payload: bytes) -> list[Outgoing]:
        return self.loop.run_until_complete(
            handle_message(self.sessions, topic=topic, payload=payload)
        )

    def count(self, query: Any) -> int:
        async def scalar() -> int:
            async with self.sessions() as session:
                return int((await session.execute(query)).scalar_one())

        return self.loop.run_until_complete(scalar())

    def dead_letters(self) -> int:
        return self.count(select(func.count()).select_from(DeadLetter))

    def close(self) -> None:
        self.loop.run_until_complete(self.engine.dispose())
        self.loop.close()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    saved = list(proofs._current)  # the process's proof store, as tests/hub/test_proofs.py does
    harness = Hub(tmp_path)
    yield harness
    harness.close()
    proofs._current[:] = saved


def rejected_total() -> float:
    return sum(
        sample.value
        for metric in MESSAGES_REJECTED.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


def refused_by_codec(topic: str, payload: bytes) -> bool:
    """What the hub must dead-letter: the codec's refusals, and anything not .../up/..."""
    try:
        if topics.parse(topic).direction != "up":
            return True
    except topics.TopicError:
        return True
    return isinstance(decode(topic, payload), Rejection)


def check_one(hub: Hub, topic: str, payload: bytes) -> None:
    letters, rejected = hub.dead_letters(), rejected_total()
    out = hub.run(topic, payload)  # must not raise, whatever it is given
    if refused_by_codec(topic, payload):
        event("dead-lettered")  # --hypothesis-show-statistics shows the mix
        assert out == []
        assert hub.dead_letters() == letters + 1
        assert rejected_total() == rejected + 1
        return
    assert hub.dead_letters() == letters
    event("decoded")
    if not topic.endswith(("/birth", "/death")):
        acks = [o.message for o in out if isinstance(o.message, Ack)]
        assert len(acks) == 1  # accepted, or rejected with a reason: the station hears either
        assert acks[0].outcome is AckOutcome.ACCEPTED or acks[0].reason


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("kind", UP_KINDS)
def test_malformed_payloads_on_every_topic_are_dead_lettered_and_counted(
    hub: Hub, kind: str
) -> None:
    @FUZZ
    @given(payload=payloads(kind))
    def one(payload: bytes) -> None:
        check_one(hub, up(kind), payload)

    one()


def test_garbage_topics_are_dead_lettered_and_counted(hub: Hub) -> None:
    @FUZZ
    @given(topic=garbage_topics, payload=st.binary(max_size=64) | st.just(dumps(valid("event"))))
    def one(topic: str, payload: bytes) -> None:
        check_one(hub, topic, payload)

    one()


# ---- oversized -----------------------------------------------------------------------------


def telemetry_of_size(target: int) -> bytes:
    """A valid telemetry batch whose JSON is exactly ``target`` bytes (padded in one value)."""
    body = valid("telemetry")
    point = body["points"][0]
    per_point = len(dumps(point)) + len(", ")
    body["points"] = [dict(point) for _ in range((target - len(dumps(body))) // per_point)]
    slack = target - len(dumps(body))
    assert slack >= 0, slack
    body["points"][-1]["value"] = "x" * (slack + len("21.5") - len('""'))  # a string value
    payload = dumps(body)
    assert len(payload) == target
    return payload


@pytest.mark.parametrize(
    ("size", "accepted"), [(MAX_PAYLOAD_BYTES - 1, True), (MAX_PAYLOAD_BYTES + 1, False)]
)
def test_payloads_just_under_and_over_256_kib(hub: Hub, size: int, accepted: bool) -> None:
    payload = telemetry_of_size(size)
    out = hub.run(up("telemetry"), payload)
    if accepted:
        (ack,) = [o.message for o in out if isinstance(o.message, Ack)]
        assert ack.outcome is AckOutcome.ACCEPTED
        assert hub.dead_letters() == 0
    else:
        assert out == []
        assert hub.dead_letters() == 1
        assert hub.loop.run_until_complete(only_reason(hub)) == (
            f"payload of {size} bytes exceeds {MAX_PAYLOAD_BYTES}"
        )


async def only_reason(hub: Hub) -> str:
    async with hub.sessions() as session:
        return (await session.scalars(select(DeadLetter.reason))).one()


def test_proofs_over_the_limit_are_refused_at_the_first_chunk(hub: Hub) -> None:
    too_big = {**valid("proof"), "total_bytes": 4096, "count": 1}  # the hub here takes 1 KiB
    (ack,) = [o.message for o in hub.run(up("proof"), dumps(too_big)) if isinstance(o.message, Ack)]
    assert ack.outcome is AckOutcome.REJECTED
    assert ack.reason
    assert "1024" in ack.reason
    beyond_protocol = {**valid("proof"), "seq": 2, "total_bytes": 33 * 1024 * 1024}
    assert hub.run(up("proof"), dumps(beyond_protocol)) == []
    assert hub.dead_letters() == 1  # over the protocol's 32 MiB: not even a valid message


# ---- unknown stations ----------------------------------------------------------------------


def stations(hub: Hub) -> Callable[[], dict[str, bool]]:
    async def rows() -> dict[str, bool]:
        async with hub.sessions() as session:
            return {s.id: s.online for s in await session.scalars(select(Station))}

    return lambda: hub.loop.run_until_complete(rows())


def test_unknown_stations_are_recorded_but_get_no_one_elses_work(hub: Hub) -> None:
    seen = stations(hub)
    hub.run(up("death", "st-ghost"), dumps(valid("death", "st-ghost")))
    assert seen() == {}  # a Will of a station never born changes nothing
    (ack,) = [o.message for o in hub.run(up("event", "st-new"), dumps(valid("event", "st-new")))]
    assert isinstance(ack, Ack)
    assert ack.outcome is AckOutcome.ACCEPTED  # its outbox may predate a hub database reset
    assert seen() == {"st-new": False}  # recorded, offline until its birth: no work yet
    job = dumps({**valid("job", "st-new"), "seq": 2})
    (ack,) = [o.message for o in hub.run(up("job", "st-new"), job)]
    assert isinstance(ack, Ack)
    assert ack.outcome is AckOutcome.REJECTED  # a job that is not its own
    assert ack.reason
    hub.run(up("birth", "st-new"), dumps(valid("birth", "st-new")))
    assert seen() == {"st-new": True}
    assert hub.dead_letters() == 0


# ---- the same through a real broker --------------------------------------------------------

BROKER_EXAMPLES = 60
mqtt_suffixes = st.text(  # what an MQTT topic may hold (mosquitto drops the client otherwise)
    st.characters(blacklist_characters="+#", blacklist_categories=["Cs", "Cc", "Cn", "Co"]),
    max_size=16,
)


def sample(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """``count`` examples of ``strategy``, the same on every run."""
    drawn: list[Any] = []

    @settings(max_examples=count, derandomize=True, database=None, deadline=None)
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    return drawn


def broker_messages() -> list[tuple[str, bytes]]:
    kinds = st.sampled_from(UP_KINDS).flatmap(lambda k: st.tuples(st.just(up(k)), payloads(k)))
    odd = st.tuples(mqtt_suffixes.map(f"bf/v1/st/{STATION}/up/".__add__), st.binary(max_size=64))
    return sample(kinds, BROKER_EXAMPLES) + sample(odd, BROKER_EXAMPLES // 4)


@pytest.mark.broker
@pytest.mark.asyncio
async def test_malformed_payloads_through_a_real_broker(tmp_path: Path) -> None:
    import aiomqtt
    import httpx
    from support.auth import signed_properties

    from benchfleet.broker import PrivateBroker
    from hub.app import create_app
    from hub.settings import HubSettings

    messages = broker_messages()
    expected = sum(refused_by_codec(topic, payload) for topic, payload in messages)
    before = rejected_total()
    with PrivateBroker(tmp_path / "broker") as broker:
        app = create_app(
            HubSettings(_env_file=None, mqtt_url=broker.url, data_dir=tmp_path / "hub")
        )  # type: ignore[call-arg]
        transport = httpx.ASGITransport(app=app)
        headers = {"X-API-Key": "dev-admin-key"}
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://hub", headers=headers) as api,
            aiomqtt.Client(broker.host, broker.port, identifier=STATION,
                           protocol=aiomqtt.ProtocolVersion.V5) as station,
        ):  # fmt: skip
            for _ in range(200):  # the hub must be subscribed before the station publishes
                if (await api.get("/health")).json()["mqtt_connected"]:
                    break
                await asyncio.sleep(0.05)
            for topic, payload in messages:  # signed as the station: the MAC is not the test
                props = signed_properties(STATION, topic, payload)
                await station.publish(topic, payload, qos=1, properties=props)
            for _ in range(200):
                letters = (await api.get("/dead-letters", params={"limit": 1000})).json()
                if len(letters) >= expected:
                    break
                await asyncio.sleep(0.05)
            assert len(letters) == expected
            assert rejected_total() - before == expected
            health = (await api.get("/health")).json()
            assert (health["status"], health["mqtt_connected"]) == ("ok", True)


def test_a_field_name_cannot_forge_log_lines_or_bloat_reasons(hub: Hub) -> None:
    forged = "x\n2026-01-01 hub.ingest: INFO all fine" + "y" * 5000
    hub.run(up("event"), dumps({**valid("event"), forged: 1}))
    reason = hub.loop.run_until_complete(only_reason(hub))
    assert "\n" not in reason
    assert len(reason) < 200
    assert reason.startswith("invalid Event: x\\n2026")
