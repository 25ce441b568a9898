"""The hub's SQL store: ORM tables, engines, Alembic migrations."""

from hub.store.engine import create_hub_engine, session_factory
from hub.store.migrate import upgrade_to_head

__all__ = ["create_hub_engine", "session_factory", "upgrade_to_head"]
