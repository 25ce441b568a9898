"""Every registered cleaner backend, open, with the simulated board it drives."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from support.cleaner_rig import Rig, close_rig, open_rig

from drivers.cleaner import BACKENDS


@pytest_asyncio.fixture(params=sorted(BACKENDS))
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    """Every registered cleaner backend, open, with its board."""
    opened = await open_rig(request.param)
    yield opened
    await close_rig(opened)
