"""Small asyncio helpers the agent's components share."""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait for ``event`` at most ``seconds``; True if it was set.

    ``asyncio.timeout`` rather than ``asyncio.wait_for``: on Python 3.11, ``wait_for`` can
    swallow a cancellation that arrives just as the inner wait completes (CPython gh-86296,
    fixed in 3.12). A task whose cancellation was swallowed goes on looping, and the TaskGroup
    waiting for it hangs the agent's stop (seen here: the link's delivery loop, ~1 stop in 6).
    """
    if event.is_set():
        return True
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
