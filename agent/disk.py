"""The station's data disk: how much of it the outbox may use, and what a full one looks like.

A :class:`DiskBudget` decides on every enqueue what the outbox may still store (telemetry goes
first, events next, evidence never); :func:`is_disk_full` recognises SQLite's own "database or
disk is full"; :class:`DiskState` is what the agent's writers found (the outbox sets ``full``,
:mod:`agent.persist` counts the evidence it holds in memory), read by ``/metrics``.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from protocol import topics

# What the budget may refuse, and when: (share of max_bytes, share of min_free_bytes). Telemetry
# goes first (60 % of the budget; below the free-space floor), events next (90 %; below a
# quarter of the floor). Job updates and proofs are absent: the budget never refuses them.
REFUSABLE: dict[topics.Up, tuple[float, float]] = {
    topics.Up.TELEMETRY: (0.6, 1.0),
    topics.Up.EVENT: (0.9, 0.25),
}


@dataclass(slots=True)
class DiskState:
    """The data disk as the agent's writers found it (plain numbers: /metrics reads them)."""

    full: bool = False  # the outbox's last write was refused by a full disk
    held: int = 0  # evidence writes waiting in memory for space (agent.persist)
    episodes: int = 0  # times evidence had to be held
    retries: int = 0  # attempts to write held evidence again


@dataclass(frozen=True, slots=True)
class DiskBudget:
    """How much the outbox may hold (payload bytes) and how much free disk it must leave."""

    max_bytes: int | None = None
    min_free_bytes: int = 0
    path: Path | None = None  # a path on the filesystem whose free space counts

    def refusal(self, kind: topics.Up, stored_bytes: int, new_bytes: int) -> str | None:
        """Why a new ``kind`` message of ``new_bytes`` may not be stored now, or None."""
        shares = REFUSABLE.get(kind)
        if shares is None:
            return None
        byte_share, free_share = shares
        if self.max_bytes is not None and stored_bytes + new_bytes > self.max_bytes * byte_share:
            return f"outbox holds {stored_bytes} bytes, over {byte_share:.0%} of its budget"
        if self.path is not None and self.min_free_bytes > 0:
            free = free_bytes(self.path)
            if free - new_bytes < self.min_free_bytes * free_share:
                return f"{free} bytes free on the data disk, under the floor for {kind.value}"
        return None


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on ``path``'s filesystem."""
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def is_disk_full(err: sqlite3.Error) -> bool:
    """SQLite's "database or disk is full" (a full disk or a page-count limit)."""
    return getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
