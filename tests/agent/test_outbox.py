"""The durable outbox: epochs, sequence numbers, ordering, resend timing, acks, reopening."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.db import open_db
from agent.outbox import MessageId, Outbox
from protocol import topics
from protocol.models import (
    Ack,
    AckOutcome,
    Event,
    StationMessage,
    TelemetryBatch,
    TelemetryPoint,
    utcnow,
)

STATION = "st-01"


def open_outbox(path: Path, resend_after_s: float = 5.0) -> Outbox:
    return Outbox(open_db(path), STATION, resend_after_s=resend_after_s)


def event(epoch: int, seq: int) -> StationMessage:
    return Event(station_id=STATION, epoch=epoch, seq=seq, kind="test")


def telemetry(epoch: int, seq: int) -> StationMessage:
    point = TelemetryPoint(device="station", metric="m", ts=utcnow(), value=1.0)
    return TelemetryBatch(station_id=STATION, epoch=epoch, seq=seq, points=[point])


def accepted(message_id: MessageId) -> Ack:
    return Ack(epoch=message_id.epoch, seq=message_id.seq, outcome=AckOutcome.ACCEPTED)


def all_ids(outbox: Outbox) -> list[MessageId]:
    return [entry.id for entry in outbox.due(now=1e12, window=10**6)]


def test_epoch_increments_across_reopen(tmp_path: Path) -> None:
    epochs = [open_outbox(tmp_path).epoch for _ in range(3)]
    assert epochs == [1, 2, 3]


def test_bd_seq_is_durable(tmp_path: Path) -> None:
    assert open_outbox(tmp_path).next_bd_seq() == 1
    outbox = open_outbox(tmp_path)
    assert [outbox.next_bd_seq(), outbox.next_bd_seq()] == [2, 3]


def test_seq_counts_within_the_epoch_and_payload_carries_it(tmp_path: Path) -> None:
    outbox = open_outbox(tmp_path)
    ids = [outbox.enqueue(topics.Up.EVENT, event) for _ in range(3)]
    assert ids == [MessageId(1, 1), MessageId(1, 2), MessageId(1, 3)]
    entry = outbox.due(now=0, window=10)[0]
    assert entry.topic == topics.up(STATION, topics.Up.EVENT)
    assert Event.model_validate_json(entry.payload).seq == 1


def test_unacked_entries_survive_reopen_with_their_ids(tmp_path: Path) -> None:
    first = open_outbox(tmp_path)
    kept = first.enqueue(topics.Up.EVENT, event)
    acked = first.enqueue(topics.Up.EVENT, event)
    first.ack(accepted(acked))
    second = open_outbox(tmp_path)
    new = second.enqueue(topics.Up.EVENT, event)
    assert all_ids(second) == [kept, new]
    assert new == MessageId(2, 1)
    payload = second.due(now=0, window=10)[0].payload
    assert Event.model_validate_json(payload).epoch == 1  # re-sent exactly as first written


def test_priority_orders_job_updates_first(tmp_path: Path) -> None:
    outbox = open_outbox(tmp_path)
    tele = outbox.enqueue(topics.Up.TELEMETRY, telemetry)
    ev = outbox.enqueue(topics.Up.EVENT, event)
    job = outbox.enqueue(topics.Up.JOB, event)  # the payload's type does not matter here
    assert [e.id for e in outbox.due(now=0, window=10)] == [job, ev, tele]
    assert outbox.depth() == {0: 1, 1: 1, 2: 1}


def test_window_limits_new_entries_but_not_resends(tmp_path: Path) -> None:
    outbox = open_outbox(tmp_path, resend_after_s=5)
    ids = [outbox.enqueue(topics.Up.EVENT, event) for _ in range(5)]
    batch = outbox.due(now=100, window=2)
    assert [e.id for e in batch] == ids[:2]
    for entry in batch:
        outbox.mark_sent(entry.id, now=100)
    assert outbox.in_flight() == 2
    assert outbox.due(now=101, window=2) == []  # window full, nothing overdue
    assert [e.id for e in outbox.due(now=106, window=2)] == ids[:2]  # overdue: re-sent
    assert [e.id for e in outbox.due(now=101, window=3)] == [ids[2]]


def test_resend_after_is_respected_and_attempts_counted(tmp_path: Path) -> None:
    outbox = open_outbox(tmp_path, resend_after_s=5)
    message_id = outbox.enqueue(topics.Up.EVENT, event)
    outbox.mark_sent(message_id, now=100)
    assert outbox.due(now=104.9, window=10) == []
    (entry,) = outbox.due(now=105, window=10)
    assert entry.attempts == 1
    outbox.resend_all_now()
    assert outbox.due(now=101, window=10)


def test_ack_removes_and_wakes_waiters(tmp_path: Path) -> None:
    outbox = open_outbox(tmp_path)
    message_id = outbox.enqueue(topics.Up.EVENT, event)

    async def scenario() -> Ack:
        waiter = asyncio.create_task(outbox.wait_for_ack(message_id))
        await asyncio.sleep(0)
        assert outbox.ack(accepted(message_id))
        return await waiter

    assert asyncio.run(scenario()).seq == message_id.seq
    assert all_ids(outbox) == []
    assert not outbox.ack(accepted(message_id))  # a duplicate Ack changes nothing


@pytest.mark.asyncio
async def test_wait_for_ack_after_the_ack_arrived(tmp_path: Path) -> None:
    outbox = open_outbox(tmp_path)
    message_id = outbox.enqueue(topics.Up.EVENT, event)
    outbox.ack(accepted(message_id))
    assert (await outbox.wait_for_ack(message_id)).seq == message_id.seq


@pytest.mark.asyncio
async def test_wait_for_ack_of_an_entry_from_before_a_restart(tmp_path: Path) -> None:
    old = open_outbox(tmp_path).enqueue(topics.Up.JOB, event)
    outbox = open_outbox(tmp_path)
    assert outbox.can_await(old)
    waiter = asyncio.create_task(outbox.wait_for_ack(old))
    await asyncio.sleep(0)
    outbox.ack(accepted(old))
    assert (await waiter).epoch == 1


def test_hook_commits_with_the_message(tmp_path: Path) -> None:
    outbox = open_outbox(tmp_path)

    def fail(*_: object) -> None:
        raise RuntimeError("caller's state change failed")

    with pytest.raises(RuntimeError):
        outbox.enqueue(topics.Up.JOB, event, also=fail)
    assert all_ids(outbox) == []  # rolled back together
    assert outbox.enqueue(topics.Up.JOB, event) == MessageId(1, 1)


operations = st.lists(
    st.one_of(
        st.just(("enqueue", 0)),
        st.tuples(st.just("ack"), st.integers(min_value=0, max_value=50)),
        st.just(("reopen", 0)),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_no_interleaving_loses_or_duplicates_an_entry(ops: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        outbox = open_outbox(path)
        expected: list[MessageId] = []
        issued: set[MessageId] = set()
        for op, arg in ops:
            if op == "enqueue":
                message_id = outbox.enqueue(topics.Up.EVENT, event)
                assert message_id not in issued  # (epoch, seq) never reused
                issued.add(message_id)
                expected.append(message_id)
            elif op == "ack" and expected:
                outbox.ack(accepted(expected.pop(arg % len(expected))))
            elif op == "reopen":
                outbox = open_outbox(path)
        assert all_ids(outbox) == sorted(expected)
