"""Run Alembic migrations from code: no alembic.ini needed, works from an installed package."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

from hub.store.engine import create_sync_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Alembic announces each of its plugins at INFO on every start: noise in the hub's log.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade_to_head(database_url: str) -> None:
    """Bring the database at ``database_url`` to the newest schema (idempotent)."""
    engine = create_sync_engine(database_url)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            # Hand over the connection instead of the URL: configparser would mangle '%'.
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
