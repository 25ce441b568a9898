"""protocol/aio.py, the wait and stop helpers (asyncio.timeout, never wait_for: CPython
gh-86296): a task is given its time and then cancelled, and the caller's own cancellation is
never swallowed. No timed assertions: every wait is on a condition or on a task's end."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from protocol.aio import cancel_and_wait, raise_if_cancelling, stop_task, wait_event

pytestmark = pytest.mark.asyncio


async def forever(started: asyncio.Event) -> None:
    """Runs until cancelled."""
    started.set()
    await asyncio.Event().wait()


async def test_wait_event_says_whether_the_event_came() -> None:
    event = asyncio.Event()
    assert not await wait_event(event, 0.01)
    asyncio.get_running_loop().call_soon(event.set)
    assert await wait_event(event, 60)
    assert await wait_event(event, 0)  # already set: no wait at all


async def test_stop_task_lets_a_task_end_by_itself() -> None:
    stop = asyncio.Event()

    async def ends_on_stop() -> str:
        await stop.wait()
        return "clean"

    task = asyncio.create_task(ends_on_stop())
    stop.set()
    await stop_task(task, 60)
    assert task.result() == "clean"


async def test_stop_task_cancels_a_task_that_does_not_stop() -> None:
    started = asyncio.Event()
    task = asyncio.create_task(forever(started))
    await started.wait()
    await stop_task(task, 0.05)
    assert task.cancelled()


async def test_stop_task_never_swallows_the_callers_cancellation() -> None:
    started = asyncio.Event()
    inner = asyncio.create_task(forever(started))
    await started.wait()
    stopper = asyncio.create_task(stop_task(inner, 3600))
    await asyncio.sleep(0)  # the stopper is now waiting for ``inner``
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    assert inner.cancelled()  # the cancellation reached what it waited for, too


async def test_cancel_and_wait_ends_the_task_and_keeps_the_callers_cancellation() -> None:
    started = asyncio.Event()
    task = asyncio.create_task(forever(started))
    await started.wait()
    await cancel_and_wait(task)
    assert task.cancelled()

    gate = asyncio.Event()

    async def slow_to_die() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await gate.wait()  # cleanup that takes a while
            raise

    slow = asyncio.create_task(slow_to_die())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(cancel_and_wait(slow))
    await asyncio.sleep(0)
    waiter.cancel()  # the stop itself is stopped while it waits
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await waiter


async def test_a_swallowed_cancellation_is_honoured_by_the_next_round() -> None:
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            raise_if_cancelling()
            rounds += 1
            # What wait_for does on 3.11 when the cancel races the inner result: swallow it.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rounds == 1  # the next round raised instead of looping on


async def test_a_stale_cancelling_count_is_not_taken_for_our_own_cancellation() -> None:
    """On 3.11 a task that survived an error inside a TaskGroup keeps cancelling() == 1 (the hub
    link's task after a lost connection); stopping something from it must still work."""

    async def fails() -> None:
        raise ValueError("connection lost")

    with contextlib.suppress(ExceptionGroup):
        async with asyncio.TaskGroup() as group:
            group.create_task(fails())
            group.create_task(asyncio.Event().wait())
    started = asyncio.Event()
    task = asyncio.create_task(forever(started))
    await started.wait()
    await cancel_and_wait(task)  # returns: the task's cancellation is not ours
    assert task.cancelled()
    other = asyncio.create_task(forever(asyncio.Event()))
    await stop_task(other, 0.01)
    assert other.cancelled()
