"""Waiting for what a test observes, with a generous limit (never sleep-and-hope)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def until(probe: Callable[[], T | None], seconds: float = 10.0) -> T:
    """Poll ``probe`` on the loop until it returns something truthy; TimeoutError after
    ``seconds`` (polling is the simplest honest probe of state a test does not own)."""
    async with asyncio.timeout(seconds):
        while not (result := probe()):  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    return result
