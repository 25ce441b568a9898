"""The hand-written Alembic migration must produce exactly the ORM's schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from hub.store.engine import create_sync_engine
from hub.store.migrate import upgrade_to_head
from hub.store.models import Base


def test_migration_matches_orm(database_url: str) -> None:
    upgrade_to_head(database_url)
    engine = create_sync_engine(database_url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert diffs == []
    assert set(Base.metadata.tables) <= tables


def test_upgrade_is_idempotent(database_url: str) -> None:
    upgrade_to_head(database_url)
    upgrade_to_head(database_url)  # a second hub start must not fail
