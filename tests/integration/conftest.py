"""The `floor` fixtures: broker, hub and agents of one test, stopped whatever happens
(support.floor_fixtures; the fault suite shares `floor`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.floor import Floor
from support.floor_fixtures import floor, started_floor

__all__ = ["floor", "floor_on"]  # fixtures: pytest finds them here by name


@pytest.fixture
def floor_on(tmp_path: Path, database_url: str) -> Iterator[Floor]:
    """Like `floor`, with the hub on SQLite and on the real PostgreSQL."""
    with started_floor(tmp_path, database_url) as running:
        yield running
