"""The durable outbox: every message that matters waits here until the hub acknowledges it.

A message gets its ``(epoch, seq)`` when it is enqueued and keeps it forever, also when it is
re-sent after a restart, so the hub can deduplicate. Only the hub's :class:`Ack` removes an
entry: a PUBACK only says the broker has it, and a broker killed between snapshots loses it.

The outbox lives on the station's disk, which fills (a long outage, a runaway log). A
:class:`DiskBudget` decides on every enqueue what may still be stored, cheapest first to go:
telemetry is refused first, events next; job updates and proof chunks (the job's evidence) are
never refused by the budget, only by a disk that is really full. A refusal, and SQLite's
"database or disk is full", raise :class:`OutboxFullError`: the caller sheds and says so (or,
for evidence, holds it in memory and writes it again: :mod:`agent.persist`), the agent never
crashes on it. The outbox's own bookkeeping (a publication, the hub's Ack, the connection
counter) that a full disk refuses is kept in memory and written with the next write that goes
through, so delivery goes on while the disk is full; an Ack only kept in memory is answered to
its waiters at once, and its entry is re-sent after a restart (the hub answers it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple, NoReturn

from agent.db import bump_counter
from agent.disk import DiskBudget, DiskState, is_disk_full
from protocol import encode, topics
from protocol.models import Ack, StationMessage

__all__ = [  # DiskBudget lived here first: callers still import it from the outbox
    "PRIORITY",
    "DiskBudget",
    "Hook",
    "MessageId",
    "Outbox",
    "OutboxEntry",
    "OutboxFullError",
]

# Lower goes first. Proof chunks are job evidence: ahead of telemetry, beside events.
PRIORITY: dict[topics.Up, int] = {
    topics.Up.JOB: 0,
    topics.Up.EVENT: 1,
    topics.Up.PROOF: 1,
    topics.Up.TELEMETRY: 2,
}
RECENT_ACKS = 1024  # answers kept in memory for waiters that arrive after their Ack

Hook = Callable[[sqlite3.Connection, int, int], None]


class OutboxFullError(Exception):
    """The message was not stored: the budget refused its kind, or the disk is full."""

    def __init__(self, kind: topics.Up, reason: str, *, disk_full: bool = False) -> None:
        super().__init__(f"outbox refused a {kind.value} message: {reason}")
        self.kind, self.reason = kind, reason
        self.disk_full = disk_full  # the disk refused it (not the budget): space may return


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
        self.disk = DiskState()
        # Bookkeeping a full disk refused, written with the next write that goes through:
        # publications (id -> when), Acks whose row is still stored (id -> priority), bd_seq.
        self._unsaved_sends: dict[MessageId, float] = {}
        self._unsaved_acks: dict[MessageId, int] = {}
        self._unsaved_bd_seq = 0
        self._resend_before: float | None = None  # a resend_all_now the disk refused
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
        """The birth/death sequence number of the next connection (durable; on a full disk
        one more than any before, written once the disk takes writes again)."""
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('bd_seq', 1) "
                    "ON CONFLICT (key) DO UPDATE SET value = value + 1"
                )
                row = db.execute("SELECT value FROM meta WHERE key = 'bd_seq'").fetchone()
        except sqlite3.OperationalError as err:
            if not is_disk_full(err):
                raise
            row = self._db.execute("SELECT value FROM meta WHERE key = 'bd_seq'").fetchone()
            self._unsaved_bd_seq = max(self._unsaved_bd_seq, int(row[0]) if row else 0) + 1
            return self._unsaved_bd_seq
        return int(row[0])

    @property
    def deferred_writes(self) -> int:
        """Bookkeeping writes a full disk refused, waiting in memory."""
        return len(self._unsaved_sends) + len(self._unsaved_acks) + bool(self._unsaved_bd_seq)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction that first writes the bookkeeping a full disk refused before;
        on a full disk nothing of it is stored (sqlite3.OperationalError, SQLITE_FULL)."""
        try:
            with self._db:
                freed = self._write_unsaved(self._db)
                yield self._db
        except sqlite3.OperationalError as err:
            self.disk.full = is_disk_full(err)
            raise
        self.disk.full = False
        self._bytes -= freed
        self._unsaved_sends.clear()
        self._unsaved_acks.clear()
        self._unsaved_bd_seq = 0

    def _write_unsaved(self, db: sqlite3.Connection) -> int:
        """Write what :meth:`_transaction` keeps in memory; the payload bytes it freed."""
        freed = 0
        for message_id in self._unsaved_acks:
            rows = db.execute(
                "DELETE FROM outbox WHERE epoch = ? AND seq = ? RETURNING length(payload)",
                message_id,
            ).fetchall()
            freed += sum(int(size) for (size,) in rows)
        if self._unsaved_sends:
            db.executemany(
                "UPDATE outbox SET last_sent_at = ?, attempts = attempts + 1 "
                "WHERE epoch = ? AND seq = ?",
                [(at, *message_id) for message_id, at in self._unsaved_sends.items()],
            )
        if self._unsaved_bd_seq:
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('bd_seq', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                (self._unsaved_bd_seq,),
            )
        return freed

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
            self._refuse(kind, str(err), disk_full=True)
        self._bytes += size
        self.changed.set()
        return MessageId(self.epoch, seq)

    def _insert(
        self, kind: topics.Up, build: Callable[[int, int], StationMessage], also: Hook | None
    ) -> tuple[int, int]:
        with self._transaction():
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

    def _refuse(self, kind: topics.Up, reason: str, *, disk_full: bool = False) -> NoReturn:
        self.refused[kind.value] += 1
        raise OutboxFullError(kind, reason, disk_full=disk_full)

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
        cutoff = now - self.resend_after_s
        if self._resend_before is not None:
            cutoff = max(cutoff, self._resend_before)
        rows = self._db.execute(
            "SELECT * FROM ("
            "  SELECT * FROM outbox WHERE last_sent_at IS NOT NULL AND last_sent_at <= ?"
            "  UNION ALL"
            "  SELECT * FROM (SELECT * FROM outbox WHERE last_sent_at IS NULL"
            "                 ORDER BY priority, epoch, seq LIMIT ?)"
            ") ORDER BY priority, epoch, seq",
            (cutoff, free),
        ).fetchall()
        entries = [
            OutboxEntry(epoch, seq, prio, kind, topic, bytes(payload), sent, attempts)
            for epoch, seq, prio, kind, topic, payload, _created, sent, attempts in rows
        ]
        if not (self._unsaved_acks or self._unsaved_sends):
            return entries
        return [  # what only memory knows: acknowledged, or sent a moment ago
            e
            for e in entries
            if e.id not in self._unsaved_acks and self._unsaved_sends.get(e.id, cutoff) <= cutoff
        ]

    def in_flight(self) -> int:
        """Entries sent at least once and not yet acknowledged by the hub."""
        row = self._db.execute("SELECT count(*) FROM outbox WHERE last_sent_at IS NOT NULL")
        return int(row.fetchone()[0]) + len(self._unsaved_sends)

    def mark_sent(self, message_id: MessageId, now: float) -> None:
        """Record one publication (PUBACK received) of ``message_id`` (in memory while the
        disk is full)."""
        try:
            with self._transaction() as db:
                db.execute(
                    "UPDATE outbox SET last_sent_at = ?, attempts = attempts + 1 "
                    "WHERE epoch = ? AND seq = ?",
                    (now, *message_id),
                )
        except sqlite3.OperationalError as err:
            if not is_disk_full(err):
                raise
            self._unsaved_sends[message_id] = now

    def resend_all_now(self) -> None:
        """Make every in-flight entry due again (after a reconnect, or the hub came back)."""
        try:
            with self._transaction() as db:
                db.execute("UPDATE outbox SET last_sent_at = 0 WHERE last_sent_at IS NOT NULL")
        except sqlite3.OperationalError as err:
            if not is_disk_full(err):
                raise
            self._resend_before = time.time()  # what was sent before now is due (in memory)
            self._unsaved_sends.clear()
        self.changed.set()

    def ack(self, ack: Ack) -> bool:
        """Apply the hub's answer: delete the entry (in memory while the disk is full), wake
        its waiters. False if unknown."""
        message_id = MessageId(ack.epoch, ack.seq)
        try:
            with self._transaction() as db:
                deleted = db.execute(
                    "DELETE FROM outbox WHERE epoch = ? AND seq = ? RETURNING length(payload), "
                    "priority",
                    message_id,
                ).fetchall()
        except sqlite3.OperationalError as err:
            if not is_disk_full(err):
                raise
            deleted = self._db.execute(
                "SELECT 0, priority FROM outbox WHERE epoch = ? AND seq = ?", message_id
            ).fetchall()
            for _, priority in deleted:  # still stored: deleted with the next write
                self._unsaved_acks[message_id] = int(priority)
        self._bytes -= sum(int(size) for size, _ in deleted)
        self._unsaved_sends.pop(message_id, None)
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
        return row is not None and message_id not in self._unsaved_acks

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
        for priority in self._unsaved_acks.values():
            counts[priority] -= 1
        return counts
