"""Database URLs and engines: one URL from settings, async for the hub, sync for migrations."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 5000

# aiosqlite logs every statement with its bound values at DEBUG: that would put engraving
# texts (personal data) in the hub's log as soon as someone runs with --log-level debug.
logging.getLogger("aiosqlite").setLevel(logging.INFO)


def async_url(url: str) -> str:
    """The async driver form: ``sqlite+aiosqlite://``, ``postgresql+psycopg://``."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend == "postgresql":
        # psycopg 3 does both sync and async, so one driver name serves both engines.
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def sync_url(url: str) -> str:
    """The sync driver form (migrations): ``sqlite://``, ``postgresql+psycopg://``."""
    parsed = make_url(async_url(url))
    if parsed.get_backend_name() == "sqlite":
        parsed = parsed.set(drivername="sqlite")
    return parsed.render_as_string(hide_password=False)


def ensure_sqlite_dir(url: str) -> None:
    """Create the directory of a SQLite file so a fresh data_dir just works."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while ingest writes; busy_timeout makes a second writer wait
    # instead of failing at once with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_hub_engine(url: str) -> AsyncEngine:
    """The hub's async engine for ``url`` (any accepted spelling)."""
    ensure_sqlite_dir(url)
    # hide_parameters: error messages and logs must never carry bound values (engraving text).
    # On SQLite every write of the hub process goes through HubLink.serialised (one writer):
    # a deferred transaction that reads and then writes would otherwise fail at once with
    # "database is locked" when another writer committed in between.
    engine = create_async_engine(async_url(url), pool_pre_ping=True, hide_parameters=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def create_sync_engine(url: str) -> Engine:
    """A sync engine (migrations, tests) with the same SQLite pragmas."""
    ensure_sqlite_dir(url)
    engine = create_engine(sync_url(url), hide_parameters=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit (we build replies from them)."""
    return async_sessionmaker(engine, expire_on_commit=False)
