"""The `floor` fixture: broker, hub and agents of one test, stopped whatever happens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.floor import Floor


@pytest.fixture
def floor(tmp_path: Path) -> Iterator[Floor]:
    """A floor with its broker running; tests start the hub and agents they need."""
    floor = Floor(tmp_path, database_url=None)
    floor.broker.start()
    try:
        yield floor
    finally:
        floor.stop_all()


@pytest.fixture
def floor_on(tmp_path: Path, database_url: str) -> Iterator[Floor]:
    """Like `floor`, with the hub on SQLite and on the real PostgreSQL."""
    floor = Floor(tmp_path, database_url=database_url)
    floor.broker.start()
    try:
        yield floor
    finally:
        floor.stop_all()
