"""The durable outbox: every message that matters waits here until the hub acknowledges it.

A message gets its ``(epoch, seq)`` when it is enqueued and keeps it forever, also when it is
re-sent after a restart, so the hub can deduplicate. Only the hub's :class:`Ack` removes an
entry: a PUBACK only says the broker has it, and a broker killed between snapshots loses it.

The outbox lives on the station's disk, which fills (a long outage, a runaway log). A
:class:`DiskBudget` decides on every enqueue what may still be stored, cheapest first to go:
telemetry is refused first, events next; job updates and proof chunks (the job's evidence) are
never refused by the budget, only by a disk that is really full. A refusal, and SQLite's
"database or disk is full", raise :class:`OutboxFullError`: the caller sheds and says so, the
agent never crashes on it.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, NoReturn

from agent.db import bump_counter
from protocol import encode, topics
from protocol.models import Ack, StationMessage

# Lower goes first. Proof chunks are job evidence: ahead of telemetry, beside events.
PRIORITY: dict[topics.Up, int] = {
    topics.Up.JOB: 0,
    topics.Up.EVENT: 1,
    topics.Up.PROOF: 1,
    topics.Up.TELEMETRY: 2,
}
RECENT_ACKS = 1024  # answers kept in memory for waiters that arrive after their Ack
# What the budget may refuse, and when: (share of max_bytes, share of min_free_bytes). Telemetry
# goes first (60 % of the budget; below the free-space floor), events next (90 %; below a
# quarter of the floor). Job updates and proofs are absent: the budget never refuses them.
REFUSABLE: dict[topics.Up, tuple[float, float]] = {
    topics.Up.TELEMETRY: (0.6, 1.0),
    topics.Up.EVENT: (0.9, 0.25),
}

Hook = Callable[[sqlite3.Connection, int, int], None]


class OutboxFullError(Exception):
    """The message was not stored: the budget refused its kind, or the disk is full."""

    def __init__(self, kind: topics.Up, reason: str) -> None:
        super().__init__(f"outbox refused a {kind.value} message: {reason}")
        self.kind, self.reason = kind, reason


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


class MessageId(NamedTuple):
    """How the hub identifies one station message."""

    epoch: int
    seq: int


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One stored message, ready to publish."""

    epoch: int
    seq: int
    priority: int
    kind: str
    topic: str
    payload: bytes
    last_sent_at: float | None
    attempts: int

    @property
    def id(self) -> MessageId:
        return MessageId(self.epoch, self.seq)


class Outbox:
    """The outbox on the agent's SQLite connection. Opening it starts a new epoch."""

    def __init__(
        self,
        db: sqlite3.Connection,
        station_id: str,
        *,
        resend_after_s: float,
        budget: DiskBudget | None = None,
    ) -> None:
        self._db = db
        self._station_id = station_id
        self.resend_after_s = resend_after_s
        self.budget = budget or DiskBudget()
        self.refused: Counter[str] = Counter()  # messages not stored, by kind
        self._bytes = self._stored_bytes()
        self._waiters: dict[MessageId, list[asyncio.Future[Ack]]] = {}
        self._recent: OrderedDict[MessageId, Ack] = OrderedDict()
        self.changed = asyncio.Event()  # set on enqueue and ack: wakes the delivery loop
        self.epoch = self.next_epoch()

    def next_epoch(self) -> int:
        """Start a new epoch (once per agent start); sequence numbers restart at 1."""
        epoch = bump_counter(self._db, "epoch")
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('next_seq', 1)")
        self.epoch = epoch
        return epoch

    def next_bd_seq(self) -> int:
        """The birth/death sequence number of the next connection (durable)."""
        return bump_counter(self._db, "bd_seq")

    def enqueue(
        self,
        kind: topics.Up,
        build: Callable[[int, int], StationMessage],
        *,
        also: Hook | None = None,
    ) -> MessageId:
        """Store the message ``build(epoch, seq)``; ``also(db, epoch, seq)`` runs in the same
        transaction, so a caller's own state change and the message commit together.

        :class:`OutboxFullError` when the budget refuses ``kind`` or the disk is full; nothing
        of the transaction (``also`` included) is then stored."""
        try:
            seq, size = self._insert(kind, build, also)
        except sqlite3.OperationalError as err:
            if not is_disk_full(err):
                raise
            self._refuse(kind, str(err))
        self._bytes += size
        self.changed.set()
        return MessageId(self.epoch, seq)

    def _insert(
        self, kind: topics.Up, build: Callable[[int, int], StationMessage], also: Hook | None
    ) -> tuple[int, int]:
        with self._db:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
            seq = int(row[0])
            payload = encode(build(self.epoch, seq))
            if reason := self.budget.refusal(kind, self._bytes, len(payload)):
                self._refuse(kind, reason)
            self._db.execute(
                "INSERT INTO outbox (epoch, seq, priority, kind, topic, payload, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    self.epoch,
                    seq,
                    PRIORITY[kind],
                    kind.value,
                    topics.up(self._station_id, kind),
                    payload,
                    time.time(),
                ),
            )
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'next_seq'", (seq + 1,))
            if also is not None:
                also(self._db, self.epoch, seq)
        return seq, len(payload)

    def _refuse(self, kind: topics.Up, reason: str) -> NoReturn:
        self.refused[kind.value] += 1
        raise OutboxFullError(kind, reason)

    def _stored_bytes(self) -> int:
        row = self._db.execute("SELECT coalesce(sum(length(payload)), 0) FROM outbox").fetchone()
        return int(row[0])

    @property
    def stored_bytes(self) -> int:
        """Payload bytes waiting for the hub's Ack."""
        return self._bytes

    def due(self, now: float, window: int) -> list[OutboxEntry]:
        """What to publish now, by priority then (epoch, seq): every entry sent more than
        ``resend_after_s`` ago, plus never-sent entries while fewer than ``window`` are in
        flight (sent, not yet acknowledged by the hub)."""
        free = max(0, window - self.in_flight())
        rows = self._db.execute(
            "SELECT * FROM ("
            "  SELECT * FROM outbox WHERE last_sent_at IS NOT NULL AND last_sent_at <= ?"
            "  UNION ALL"
            "  SELECT * FROM (SELECT * FROM outbox WHERE last_sent_at IS NULL"
            "                 ORDER BY priority, epoch, seq LIMIT ?)"
            ") ORDER BY priority, epoch, seq",
            (now - self.resend_after_s, free),
        ).fetchall()
        return [
            OutboxEntry(epoch, seq, prio, kind, topic, bytes(payload), sent, attempts)
            for epoch, seq, prio, kind, topic, payload, _created, sent, attempts in rows
        ]

    def in_flight(self) -> int:
        """Entries sent at least once and not yet acknowledged by the hub."""
        row = self._db.execute("SELECT count(*) FROM outbox WHERE last_sent_at IS NOT NULL")
        return int(row.fetchone()[0])

    def mark_sent(self, message_id: MessageId, now: float) -> None:
        """Record one publication (PUBACK received) of ``message_id``."""
        with self._db:
            self._db.execute(
                "UPDATE outbox SET last_sent_at = ?, attempts = attempts + 1 "
                "WHERE epoch = ? AND seq = ?",
                (now, *message_id),
            )

    def resend_all_now(self) -> None:
        """Make every in-flight entry due again (after a reconnect, or the hub came back)."""
        with self._db:
            self._db.execute("UPDATE outbox SET last_sent_at = 0 WHERE last_sent_at IS NOT NULL")
        self.changed.set()

    def ack(self, ack: Ack) -> bool:
        """Apply the hub's answer: delete the entry, wake its waiters. False if unknown."""
        message_id = MessageId(ack.epoch, ack.seq)
        with self._db:
            deleted = self._db.execute(
                "DELETE FROM outbox WHERE epoch = ? AND seq = ? RETURNING length(payload)",
                message_id,
            ).fetchall()
        self._bytes -= sum(int(size) for (size,) in deleted)
        self._recent[message_id] = ack
        while len(self._recent) > RECENT_ACKS:
            self._recent.popitem(last=False)
        for waiter in self._waiters.pop(message_id, []):
            if not waiter.done():
                waiter.set_result(ack)
        self.changed.set()
        return bool(deleted)

    def contains(self, message_id: MessageId) -> bool:
        """True while ``message_id`` waits for its Ack."""
        row = self._db.execute(
            "SELECT 1 FROM outbox WHERE epoch = ? AND seq = ?", message_id
        ).fetchone()
        return row is not None

    def can_await(self, message_id: MessageId) -> bool:
        """True if :meth:`wait_for_ack` can ever return for ``message_id``."""
        return message_id in self._recent or self.contains(message_id)

    async def wait_for_ack(self, message_id: MessageId) -> Ack:
        """The hub's answer to ``message_id`` (also for entries enqueued before a restart)."""
        if (known := self._recent.get(message_id)) is not None:
            return known
        waiter: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(message_id, []).append(waiter)
        try:
            return await waiter
        finally:
            waiters = self._waiters.get(message_id, [])
            if waiter in waiters:
                waiters.remove(waiter)

    def depth(self) -> dict[int, int]:
        """Unacknowledged entries per priority (0 job updates, 1 events, 2 telemetry)."""
        rows = self._db.execute("SELECT priority, count(*) FROM outbox GROUP BY priority")
        counts = dict.fromkeys(PRIORITY.values(), 0)
        counts.update({int(priority): int(count) for priority, count in rows})
        return counts
