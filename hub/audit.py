"""The chain of custody: an append-only, hash-chained audit log, and its verification.

Every entry's ``hash`` is ``sha256(prev_hash || canonical JSON of the entry)``. Appends take
the lock on the single ``audit_head`` row first (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite
has one writer anyway), so several hub processes write one gap-free chain. Callers lock the head
*before* they touch any job row (:func:`lock_head`), which keeps the lock order fixed and
rules out deadlocks between hubs.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.store.models import AuditEntry, AuditHead

GENESIS = "0" * 64
HEAD_ID = 1


def canonical(payload: dict[str, Any]) -> bytes:
    """Stable bytes for hashing: sorted keys, no spaces, UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_payload(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    order_id: uuid.UUID | None,
    job_id: uuid.UUID | None,
    station_id: str | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    """What the hash covers: every column except the hashes themselves."""
    return {
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "order_id": str(order_id) if order_id else None,
        "job_id": str(job_id) if job_id else None,
        "station_id": station_id,
        "data": data,
    }


def chain_hash(prev_hash: str, payload: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(payload)).hexdigest()


async def lock_head(session: AsyncSession) -> AuditHead:
    """The head row, locked until the caller's transaction ends."""
    head = (
        await session.execute(
            select(AuditHead)
            .where(AuditHead.id == HEAD_ID)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if head is None:  # a schema created without the migration's seed row
        head = AuditHead(id=HEAD_ID, seq=0, hash=GENESIS)
        session.add(head)
        await session.flush()
    return head


async def append(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    at: datetime,
    data: dict[str, Any],
    order_id: uuid.UUID | None = None,
    job_id: uuid.UUID | None = None,
    station_id: str | None = None,
) -> AuditEntry:
    """Append one entry to the chain in the caller's transaction."""
    head = await lock_head(session)
    seq = head.seq + 1
    # Round-trip through JSON so the hash covers exactly what the JSON column gives back.
    data = json.loads(canonical(data))
    fields: dict[str, Any] = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "order_id": order_id,
        "job_id": job_id,
        "station_id": station_id,
        "data": data,
    }
    digest = chain_hash(head.hash, entry_payload(**fields))
    entry = AuditEntry(**fields, prev_hash=head.hash, hash=digest)
    session.add(entry)
    head.seq, head.hash = seq, digest
    await session.flush()
    return entry


@dataclass(frozen=True, slots=True)
class Verdict:
    """The result of checking the chain: ``ok``, how many entries, and the first problem."""

    ok: bool
    entries: int
    head_hash: str
    problem: str | None = None
    bad_seq: int | None = None


def _row_payload(row: Any) -> dict[str, Any]:
    return entry_payload(
        seq=row.seq,
        at=_utc(row.at),
        actor=row.actor,
        action=row.action,
        order_id=_uuid(row.order_id),
        job_id=_uuid(row.job_id),
        station_id=row.station_id,
        data=row.data if isinstance(row.data, dict) else json.loads(row.data),
    )


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # raw SQLite text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _uuid(value: object) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


def verify_rows(rows: Iterable[Any], head: tuple[int, str] | None) -> Verdict:
    """Walk the chain in ``seq`` order; the first broken link names the tampered entry."""
    prev, expected_seq, count = GENESIS, 1, 0
    for row in rows:
        if row.seq != expected_seq:
            return Verdict(False, count, prev, f"entry {expected_seq} is missing", expected_seq)
        if row.prev_hash != prev:
            return Verdict(False, count, prev, f"entry {row.seq}: prev_hash broken", row.seq)
        if chain_hash(prev, _row_payload(row)) != row.hash:
            return Verdict(False, count, prev, f"entry {row.seq}: content altered", row.seq)
        prev, expected_seq, count = row.hash, expected_seq + 1, count + 1
    if head is not None and head != (count, prev):
        problem = f"head says {head[0]} entries, the log has {count}: entries removed or added"
        return Verdict(False, count, prev, problem, count + 1)
    return Verdict(True, count, prev)


def _rows_sync(connection: Connection, batch: int = 5000) -> Iterator[Any]:
    last = 0
    table = AuditEntry.__table__
    while True:
        chunk = connection.execute(
            select(table).where(table.c.seq > last).order_by(table.c.seq).limit(batch)
        ).fetchall()
        if not chunk:
            return
        yield from chunk
        last = chunk[-1].seq


def verify_database(database_url: str) -> Verdict:
    """Check the whole chain of the database at ``database_url`` (sync: the CLI uses it)."""
    from hub.store.engine import create_sync_engine

    engine = create_sync_engine(database_url)
    try:
        with engine.connect() as connection:
            head_row = connection.execute(
                select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == HEAD_ID)
            ).first()
            head = (head_row[0], head_row[1]) if head_row else None
            return verify_rows(_rows_sync(connection), head)
    finally:
        engine.dispose()


async def entries_for_order(session: AsyncSession, *, order_id: uuid.UUID) -> list[AuditEntry]:
    """The audit entries of one order (its jobs included), oldest first."""
    result = await session.scalars(
        select(AuditEntry).where(AuditEntry.order_id == order_id).order_by(AuditEntry.seq)
    )
    return list(result.all())


def entry_intact(entry: AuditEntry) -> bool:
    """Whether one entry still matches its own hash (the dossier shows this per entry)."""
    return chain_hash(entry.prev_hash, _row_payload(entry)) == entry.hash
