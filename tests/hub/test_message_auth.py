"""hub.message_auth: the hub refuses station messages without a valid MAC, signs its own.

Real SQLite and PostgreSQL (the `sessions` fixture); the revoked generation comes from the
station_enrollments table that `benchfleet station revoke` writes.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from support.auth import station_key

from hub import enrollment, message_auth
from hub.ingest import dead_letter
from hub.metrics import MESSAGES_REJECTED
from hub.settings import HubSettings
from hub.store.models import AuditEntry, DeadLetter
from protocol import auth, topics
from protocol.models import utcnow

Sessions = async_sessionmaker[AsyncSession]
TOPIC = topics.up("st-a", topics.Up.EVENT)
PAYLOAD = b'{"v": 1}'
pytestmark = pytest.mark.asyncio


def keys(sessions: Sessions, **settings: object) -> message_auth.StationKeys:
    hub_settings = HubSettings(_env_file=None, **settings)  # type: ignore[call-arg, arg-type]
    keys = message_auth.StationKeys(hub_settings, sessions)
    keys_cache_off(keys)
    return keys


def keys_cache_off(keys: message_auth.StationKeys) -> None:
    keys._states.clear()


def signed(station: str, generation: int = 1, topic: str = TOPIC) -> list[tuple[str, str]]:
    return auth.user_properties(station_key(station, generation), generation, topic, PAYLOAD)


async def test_a_correctly_signed_message_passes(sessions: Sessions) -> None:
    assert await keys(sessions).check(TOPIC, PAYLOAD, signed("st-a")) is None


@pytest.mark.parametrize(
    ("properties", "problem"),
    [
        (None, "no bf-mac property"),
        ([("bf-mac", "00" * 32), ("bf-keygen", "1")], "the MAC does not match"),
        (signed("st-b"), "the MAC does not match"),  # another station's key
        (signed("st-a", topic=topics.up("st-a", topics.Up.JOB)), "the MAC does not match"),
        (signed("st-a", generation=2), "key generation 2 is not the current 1"),
    ],
)
async def test_forged_or_foreign_messages_are_refused_and_counted(
    sessions: Sessions, properties: list[tuple[str, str]] | None, problem: str
) -> None:
    refused = await keys(sessions).check(TOPIC, PAYLOAD, properties)
    assert refused is not None
    assert refused.reason == f"bad or missing signature for station st-a: {problem}"
    counter = MESSAGES_REJECTED.labels(reason_kind="bad_signature")
    before = counter._value.get()
    await dead_letter(sessions, rejection=refused, now=utcnow())
    assert counter._value.get() == before + 1
    async with sessions() as session:
        rows = (await session.execute(select(DeadLetter))).scalars().all()
    assert [(row.station_id, row.payload) for row in rows] == [("st-a", PAYLOAD)]


async def test_a_revoked_generation_stops_verifying_and_reenrollment_issues_the_next(
    sessions: Sessions,
) -> None:
    checker = keys(sessions)
    async with sessions.begin() as session:
        assert await enrollment.revoke(session, station_id="st-a", by="t", now=utcnow()) == 1
    keys_cache_off(checker)
    refused = await checker.check(TOPIC, PAYLOAD, signed("st-a"))
    assert refused is not None
    assert "key generation 1 is revoked" in refused.reason
    async with sessions.begin() as session:
        assert await enrollment.enroll(session, station_id="st-a", by="t", now=utcnow()) == 2
    keys_cache_off(checker)
    assert await checker.check(TOPIC, PAYLOAD, signed("st-a")) is not None  # old key
    assert await checker.check(TOPIC, PAYLOAD, signed("st-a", generation=2)) is None
    async with sessions() as session:
        actions = (
            await session.execute(select(AuditEntry.action).order_by(AuditEntry.seq))
        ).scalars()
        assert list(actions) == ["station_revoked", "station_enrolled"]
        count = await session.scalar(select(func.count()).select_from(DeadLetter))
    assert count == 0


async def test_station_auth_off_checks_nothing(sessions: Sessions) -> None:
    # Only for hubs whose stations have no keys yet (documented in docs/security.md).
    assert await keys(sessions, station_auth="off").check(TOPIC, PAYLOAD, None) is None


async def test_the_hub_signs_with_the_key_of_the_station_in_the_topic(sessions: Sessions) -> None:
    checker = keys(sessions)
    down = topics.down("st-a", topics.Down.JOB)
    props = await checker.properties(down, PAYLOAD)
    assert props is not None
    read = auth.read_properties(props.UserProperty)
    assert read.generation == 1
    assert auth.verify(station_key("st-a"), down, PAYLOAD, read.mac)
    assert not auth.verify(station_key("st-b"), down, PAYLOAD, read.mac)
    assert await checker.properties(topics.HUB_STATE, PAYLOAD) is None  # to everyone


async def test_enrolling_twice_is_refused(sessions: Sessions) -> None:
    async with sessions.begin() as session:
        await enrollment.enroll(session, station_id="st-a", by="t", now=utcnow())
    with pytest.raises(enrollment.EnrollmentError, match="already enrolled"):
        async with sessions.begin() as session:
            await enrollment.enroll(session, station_id="st-a", by="t", now=utcnow())
