"""The `floor` fixture of the fault suite: broker running, everything stopped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.floor import Floor


@pytest.fixture
def floor(tmp_path: Path) -> Iterator[Floor]:
    floor = Floor(tmp_path, database_url=None)
    floor.broker.start()
    try:
        yield floor
    finally:
        floor.stop_all()
