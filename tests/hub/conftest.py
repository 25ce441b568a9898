"""Hub store fixtures on top of tests/conftest.py's `database_url` (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.store import create_hub_engine, session_factory, upgrade_to_head


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
async def pg_sessions(
    pg_database: Callable[[], str],
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """An async session factory on a fresh, migrated PostgreSQL database."""
    url = pg_database()
    upgrade_to_head(url)
    engine = create_hub_engine(url)
    yield session_factory(engine)
    await engine.dispose()
