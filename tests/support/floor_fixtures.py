"""The `floor` fixture the integration and fault suites share (their conftests import it): a
:class:`Floor` whose broker runs, every process it started stopped afterwards, whatever the
test did."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.floor import Floor


@contextlib.contextmanager
def started_floor(root: Path, database_url: str | None = None) -> Iterator[Floor]:
    """A floor under ``root`` with its broker running (the hub on ``database_url``, SQLite
    when None); its broker, hub and agents are stopped on the way out."""
    floor = Floor(root, database_url=database_url)
    floor.broker.start()
    try:
        yield floor
    finally:
        floor.stop_all()


@pytest.fixture
def floor(tmp_path: Path) -> Iterator[Floor]:
    """A floor with its broker running; tests start the hub and agents they need."""
    with started_floor(tmp_path) as running:
        yield running
