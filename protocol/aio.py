"""Small asyncio helpers for the hub's and the agent's waits and stop paths.

All of them use ``asyncio.timeout`` rather than ``asyncio.wait_for``: on Python 3.11,
``wait_for`` can swallow a cancellation that arrives just as the inner wait completes (CPython
gh-86296, fixed in 3.12). A task whose cancellation was swallowed goes on running, and whoever
waits for it hangs (the agent's stop hung that way ~1 in 6: the link's delivery loop).

"Our own cancellation" is judged by ``Task.cancelling()`` growing while we wait, not by it
being non-zero: on 3.11 a task that survived an error inside a ``TaskGroup`` keeps
``cancelling() == 1`` for good (the hub link's task does, after every lost connection).
"""

from __future__ import annotations

import asyncio
from typing import Any


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait for ``event`` at most ``seconds``; True if it was set."""
    if event.is_set():
        return True
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def stop_task(task: asyncio.Task[Any], seconds: float) -> None:
    """Give ``task`` ``seconds`` to end by itself, then cancel it and wait until it ended.

    A task that ended cancelled is not an error here, but a cancellation of the caller itself
    is never swallowed: it is re-raised, so a stop that is itself being stopped ends.
    """
    before = _cancelling()
    try:
        # Awaiting a task directly: when the timeout cancels us, the cancellation reaches
        # ``task`` too, and we resume only once it has ended (as ``wait_for`` did).
        async with asyncio.timeout(seconds):
            await task
    except TimeoutError:
        return
    except asyncio.CancelledError:
        if _cancelling() > before:
            raise


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it ended; the caller's own cancellation propagates."""
    before = _cancelling()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if _cancelling() > before:
            raise


def raise_if_cancelling() -> None:
    """Honour a cancellation that an await swallowed (``wait_for`` inside a library, e.g.
    aiomqtt's publish): a loop calls this each round, or its stop waits for ever. Only for a
    loop that is a task of its own (a TaskGroup child), whose count starts at 0."""
    if _cancelling():
        raise asyncio.CancelledError


def _cancelling() -> int:
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0
