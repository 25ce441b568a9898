"""Fixtures every suite may use: databases on SQLite and on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from support.postgres import create_database, drop_database


@pytest.fixture(scope="session")
def pg_available() -> None:
    """Skip, saying why, when no PostgreSQL listens at 127.0.0.1:5432."""
    try:
        drop_database(create_database())
    except psycopg.OperationalError as err:
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432: {err}")


@pytest.fixture
def pg_database(pg_available: None) -> Iterator[Callable[[], str]]:
    """A factory of fresh PostgreSQL databases, all dropped after the test."""
    made: list[str] = []

    def make() -> str:
        made.append(create_database())
        return made[-1]

    yield make
    for url in made:
        drop_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database URL (not migrated), on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.db'}"
    make: Callable[[], str] = request.getfixturevalue("pg_database")
    return make()
