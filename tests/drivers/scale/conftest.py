"""The ``make_rig`` fixture: a scale backend opened against a simulated balance on a pty."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio
from support.scale_rigs import RIGS, Rig


@pytest_asyncio.fixture
async def make_rig(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Rig]]]:
    """``await make_rig("mtsics", unit="ct")``; everything is closed and stopped afterwards."""
    made: list[Rig] = []

    async def make(backend: str, **options: Any) -> Rig:
        made.append(await RIGS[backend](tmp_path / f"tty-{backend}", options))
        return made[-1]

    yield make
    for rig in made:
        await rig.scale.close()
        rig.simulator.stop()
