"""The agent's one SQLite file: outbox, jobs, dead letters, counters.

Why the standard library's ``sqlite3`` and not SQLAlchemy: the agent runs a handful of tiny
statements on three tables, from one thread; each takes microseconds, so they run on the loop
directly. An ORM or an async driver would add a thread hop and a layer for nothing here.

WAL lets a reader never block the writer; ``synchronous=FULL`` makes every commit durable on
power loss, which job updates need (telemetry, written every few seconds, pays a negligible
price for sharing the setting).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    epoch INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    last_sent_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (epoch, seq)
);
CREATE INDEX IF NOT EXISTS outbox_order ON outbox (priority, epoch, seq);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    hub_status TEXT NOT NULL,
    phase TEXT NOT NULL,
    pending_epoch INTEGER,
    pending_seq INTEGER,
    assignment TEXT NOT NULL,
    arrived_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL
);
"""

DB_FILENAME = "agent.sqlite3"


def open_db(data_dir: Path) -> sqlite3.Connection:
    """Open (and create if needed) the agent's database under ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    # autocommit off + explicit `with db:` blocks: every change is one short transaction.
    db = sqlite3.connect(data_dir / DB_FILENAME, isolation_level="DEFERRED")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA busy_timeout=5000")
    with db:
        db.executescript(SCHEMA)
    return db


def bump_counter(db: sqlite3.Connection, key: str) -> int:
    """Increment the durable counter ``key`` (starting at 1) and return its new value."""
    with db:
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, 1) "
            "ON CONFLICT (key) DO UPDATE SET value = value + 1",
            (key,),
        )
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return int(row[0])
