"""The PostgreSQL our machines run at 127.0.0.1:5432: one throwaway database per use."""

from __future__ import annotations

import secrets

import psycopg

PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
PG_SERVER_URL = "postgresql://postgres@127.0.0.1:5432"


def admin(sql: str) -> None:
    """Run one statement as the PostgreSQL superuser, outside a transaction."""
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def create_database() -> str:
    """Create an empty database with a unique name and return its URL."""
    name = f"bf_test_{secrets.token_hex(6)}"
    admin(f'CREATE DATABASE "{name}"')
    return f"{PG_SERVER_URL}/{name}"


def drop_database(url: str) -> None:
    """Drop a database made by :func:`create_database`, even with clients still connected."""
    admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
