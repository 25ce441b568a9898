"""Database fixtures: every store test runs on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.store import create_hub_engine, session_factory, upgrade_to_head

PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"


def _admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A fresh database on the local PostgreSQL for this test session; dropped at the end."""
    name = f"bf_test_{secrets.token_hex(4)}"
    try:
        _admin(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as err:
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432: {err}")
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fresh_pg_database(server_url: str) -> str:
    """A new database per test, so tests never see each other's rows."""
    name = f"bf_test_{secrets.token_hex(6)}"
    _admin(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL (not migrated), on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.db'}"
        return
    url = _fresh_pg_database(request.getfixturevalue("pg_server"))
    yield url
    _admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


@pytest.fixture
def migrated_url(database_url: str) -> str:
    """A database URL at the newest schema."""
    upgrade_to_head(database_url)
    return database_url


@pytest_asyncio.fixture
async def sessions(migrated_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """An async session factory on a migrated database."""
    engine = create_hub_engine(migrated_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest_asyncio.fixture
async def pg_sessions(pg_server: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """An async session factory on a fresh, migrated PostgreSQL database."""
    url = _fresh_pg_database(pg_server)
    upgrade_to_head(url)
    engine = create_hub_engine(url)
    yield session_factory(engine)
    await engine.dispose()
    _admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
