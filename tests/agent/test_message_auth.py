"""agent.message_auth: the station's checks of what the hub sends (real SQLite job store)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from agent.db import open_db
from agent.jobstore import JobStore
from agent.message_auth import MessageAuth
from protocol import auth, topics
from protocol.models import JobAssignment, Piece, StepKind, StepSpec, utcnow

KEY = (auth.station_key(b"master", "st-01", 2), 2)
TOPIC = topics.down("st-01", topics.Down.JOB)


def job(**fields: object) -> JobAssignment:
    step = StepSpec(name="engrave", kind=StepKind.ENGRAVE)
    return JobAssignment(
        job_id=uuid4(), version=2, order_ref="o", piece=Piece(sku="s", serial="n"),
        steps=[step], **fields,
    )  # fmt: skip


@pytest.fixture
def store_and_auth(tmp_path: Path) -> tuple[JobStore, MessageAuth]:
    db = open_db(tmp_path)
    return JobStore(db), MessageAuth(KEY, db, window_s=60)


def test_signature_checks(store_and_auth: tuple[JobStore, MessageAuth]) -> None:
    _, checker = store_and_auth
    payload = b"{}"
    good = auth.user_properties(KEY[0], 2, TOPIC, payload)
    assert checker.signature_problem(TOPIC, payload, good) is None
    assert checker.signature_problem(TOPIC, b"{ }", good) == "the MAC does not match"
    assert checker.signature_problem(TOPIC, payload, None) == "no bf-mac property"
    old = auth.user_properties(KEY[0], 1, TOPIC, payload)
    assert checker.signature_problem(TOPIC, payload, old) == "key generation 1 is not ours (2)"
    props = checker.properties(TOPIC, payload)
    assert props is not None
    assert checker.signature_problem(TOPIC, payload, props.UserProperty) is None


def test_an_older_version_of_a_held_job_is_a_replay(
    store_and_auth: tuple[JobStore, MessageAuth],
) -> None:
    store, checker = store_and_auth
    held = job()
    store.insert(held.model_copy(update={"version": 5}))
    problem = checker.replay_problem(held)
    assert problem == "version 2 is older than the held version 5"
    assert checker.replay_problem(held.model_copy(update={"version": 5})) is None  # a re-send
    assert checker.replay_problem(held.model_copy(update={"version": 6})) is None


def test_an_unknown_job_issued_long_before_the_newest_is_a_replay(
    store_and_auth: tuple[JobStore, MessageAuth], tmp_path: Path
) -> None:
    store, checker = store_and_auth
    now = utcnow()
    newest = job(issued_at=now)
    store.insert(newest)
    checker.accepted(newest)
    assert checker.replay_problem(job(issued_at=now - timedelta(seconds=30))) is None
    stale = job(issued_at=now - timedelta(seconds=61))
    assert "more than 60 s before the newest assignment" in str(checker.replay_problem(stale))
    # after a restart the newest comes from the job store
    restarted = MessageAuth(KEY, open_db(tmp_path), window_s=60)
    assert restarted.replay_problem(stale) is not None


def test_without_a_key_nothing_is_signed_or_checked(tmp_path: Path) -> None:
    checker = MessageAuth(None, open_db(tmp_path))
    assert not checker.enabled
    assert checker.properties(TOPIC, b"{}") is None
    assert checker.signature_problem(TOPIC, b"{}", None) is None
