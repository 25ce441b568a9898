"""Personal data at the hub: which values are personal, their redaction from logs, their expiry.

Personal data here is an order line's engraving text and gift message (in ``orders.request``,
the pack step's params and the OCR read-back of verifications) and the proof photos (files
under the proofs directory). docs/security.md "Personal data" has the access matrix.

Expiry (:func:`expire_once`, run by the hub's sweeper every ``pii_expiry_every_s`` and by
``benchfleet pii expire``) only touches finished work - orders whose every job is done, failed
or cancelled and untouched for the retention period:

- texts: each is replaced by ``[expired]`` beside its SHA-256; verification read-backs too. One
  ``personal_data_expired`` audit entry per order keeps the hashes. The audit chain never held
  the texts, so it still verifies; the order's ``content_sha256`` still proves what was asked.
- proof photos: the file is deleted after the ``proof_expired`` audit entry (with its hash) is
  committed; the ``proofs`` row stays. A crash between the two leaves the file, and the next
  pass deletes it (and writes the entry again: an extra entry, never a missing one).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub import audit
from hub.proofs import ProofConfig, proof_path
from hub.settings import HubSettings
from hub.store.models import AuditEntry, Job, Order
from hub.store.proofs_tables import ProofChunkRecord, ProofRecord, VerificationRecord
from hub.transitions import HUB_ACTOR
from protocol.models import JobStatus, utcnow
from protocol.redaction import KNOWN

log = logging.getLogger(__name__)

EXPIRED = "[expired]"
FINISHED = (JobStatus.DONE.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value)
TEXTS_EXPIRED = "personal_data_expired"
PROOF_EXPIRED = "proof_expired"
BATCH = 500  # orders per pass: a first run over years of history spreads over several passes


def sha256_text(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def personal_values(request: dict[str, Any]) -> list[str]:
    """The engraving texts and gift messages of an order request (as stored)."""
    values = []
    for line in request.get("lines") or []:
        text = (line.get("engraving") or {}).get("text")
        gift = (line.get("packaging") or {}).get("gift_message")
        values += [v for v in (text, gift) if isinstance(v, str) and v != EXPIRED]
    return values


def remember(request: dict[str, Any]) -> None:
    """Have the log filter redact this request's personal values from now on."""
    KNOWN.add(*personal_values(request))


async def remember_open_orders(session: AsyncSession) -> int:
    """Register the personal values of every order with unfinished work; returns how many."""
    unfinished = select(Job.id).where(Job.order_id == Order.id, Job.status.not_in(FINISHED))
    orders = await session.scalars(select(Order).where(exists(unfinished)))
    count = 0
    for order in orders:
        remember(order.request)
        count += 1
    return count


REDACTED = "[redacted]"


def redact_dossier(dossier: dict[str, Any], shown: Callable[[str | None], bool]) -> None:
    """Blank the engraving text of each dossier line unless ``shown(station)`` holds for a
    station that worked on it (for a line nobody took yet: ``shown(None)``)."""
    stations: dict[str, set[str | None]] = {}
    for job in dossier.get("jobs", []):
        stations.setdefault(str(job.get("line_id")), set()).add(job.get("station_id"))
    for line in dossier.get("order", {}).get("lines", []):
        engraving = line.get("engraving")
        if not engraving or engraving.get("text") in (None, EXPIRED):
            continue
        if not any(shown(station) for station in stations.get(str(line.get("line_id")), {None})):
            engraving["text"] = REDACTED


@dataclass
class ExpiryReport:
    """What one pass did; ``files`` are the proof files to delete once it committed."""

    orders: int = 0
    texts: int = 0
    verifications: int = 0
    proofs: int = 0
    chunks: int = 0
    files: list[Path] = field(default_factory=list)


def _expire_fields(request: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """A copy of ``request`` with its texts replaced, and the hashes of what was replaced."""
    expired = copy.deepcopy(request)
    hashes = []
    for line in expired.get("lines") or []:
        for part, key in (("engraving", "text"), ("packaging", "gift_message")):
            holder = line.get(part) or {}
            value = holder.get(key)
            if not isinstance(value, str) or value == EXPIRED:
                continue
            digest = sha256_text(value)
            holder[key], holder[f"{key}_sha256"] = EXPIRED, digest
            hashes.append({"line_id": str(line.get("line_id")), "field": f"{part}.{key}"})
            hashes[-1]["sha256"] = digest
    return expired, hashes


def _expire_steps(steps: list[Any]) -> list[Any]:
    expired = copy.deepcopy(steps)
    for step in expired:
        params = step.get("params") or {}
        if isinstance(params.get("gift_message"), str):
            params["gift_message"] = EXPIRED
    return expired


async def expire_texts(
    session: AsyncSession, *, now: datetime, retention: timedelta, report: ExpiryReport
) -> None:
    """Replace the texts of finished orders older than ``retention`` by their hashes."""
    cutoff = now - retention
    not_finished = select(Job.id).where(
        Job.order_id == Order.id, or_(Job.status.not_in(FINISHED), Job.updated_at >= cutoff)
    )
    done_before = select(AuditEntry.seq).where(
        AuditEntry.order_id == Order.id, AuditEntry.action == TEXTS_EXPIRED
    )
    query = (
        select(Order)
        .where(Order.created_at < cutoff, ~exists(not_finished), ~exists(done_before))
        .order_by(Order.created_at)
        .limit(BATCH)
    )
    for order in (await session.scalars(query)).all():
        await audit.lock_head(session)  # the chain's lock before any row (hub.audit)
        order.request, hashes = _expire_fields(order.request)
        jobs = (await session.scalars(select(Job).where(Job.order_id == order.id))).all()
        for job in jobs:
            job.steps = _expire_steps(job.steps)
        cleared = await session.execute(
            update(VerificationRecord)
            .where(VerificationRecord.job_id.in_([job.id for job in jobs]))
            .values(read_text=EXPIRED, diff=[])
        )
        verifications = int(getattr(cleared, "rowcount", 0) or 0)
        await audit.append(
            session,
            actor=HUB_ACTOR,
            action=TEXTS_EXPIRED,
            at=now,
            data={"fields": hashes, "verifications": verifications, "retention": str(retention)},
            order_id=order.id,
        )
        report.orders += 1
        report.texts += len(hashes)
        report.verifications += verifications


async def expire_proofs(
    session: AsyncSession,
    *,
    now: datetime,
    retention: timedelta,
    proofs_dir: Path,
    report: ExpiryReport,
) -> None:
    """Record the expiry of proof photos of finished jobs older than ``retention``; the caller
    deletes ``report.files`` after the commit. Stalled uploads' chunks go as well."""
    cutoff = now - retention
    unfinished = select(Job.id).where(Job.id == ProofRecord.job_id, Job.status.not_in(FINISHED))
    query = select(ProofRecord).where(ProofRecord.received_at < cutoff, ~exists(unfinished))
    for proof in (await session.scalars(query)).all():
        path = proof_path(proofs_dir, proof.sha256, proof.content_type)
        if not path.exists():
            continue  # expired before (or never written): the row keeps the hash
        job = await session.get(Job, proof.job_id) if proof.job_id else None
        await audit.append(
            session,
            actor=HUB_ACTOR,
            action=PROOF_EXPIRED,
            at=now,
            data={"sha256": proof.sha256, "bytes": proof.bytes, "step": proof.step},
            order_id=job.order_id if job else None,
            job_id=proof.job_id,
            station_id=proof.station_id,
        )
        report.proofs += 1
        report.files.append(path)
    stalled = await session.execute(
        delete(ProofChunkRecord).where(ProofChunkRecord.received_at < cutoff)
    )
    report.chunks += int(getattr(stalled, "rowcount", 0) or 0)


def delete_files(paths: Iterable[Path]) -> int:
    deleted = 0
    for path in paths:
        try:
            path.unlink()
            deleted += 1
        except FileNotFoundError:
            continue
    return deleted


async def expire_once(
    sessions: async_sessionmaker[AsyncSession], settings: HubSettings, *, now: datetime
) -> ExpiryReport:
    """One expiry pass in its own transaction; proof files are deleted after it committed."""
    report = ExpiryReport()
    async with sessions.begin() as session:
        await expire_texts(
            session, now=now, retention=timedelta(days=settings.pii_retention_days), report=report
        )
        await expire_proofs(
            session,
            now=now,
            retention=timedelta(days=settings.proof_retention_days),
            proofs_dir=ProofConfig.from_settings(settings).proofs_dir,
            report=report,
        )
    delete_files(report.files)
    if report.orders or report.proofs or report.chunks:
        log.info(
            "personal data expired: %d order(s), %d text(s), %d proof photo(s), %d stale chunk(s)",
            report.orders,
            report.texts,
            report.proofs,
            report.chunks,
        )
    return report


class PiiSweeper:
    """Held by the hub's MQTT link: registers open orders' texts for log redaction at start
    and on every expiry pass (orders another hub took in), and runs the expiry."""

    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self._due = time.monotonic()  # the first sweep registers and expires
        self._every = settings.pii_expiry_every_s

    async def run(self, sessions: async_sessionmaker[AsyncSession], *, now: datetime) -> None:
        if time.monotonic() < self._due:
            return
        self._due = time.monotonic() + self._every
        try:
            async with sessions() as session:
                await remember_open_orders(session)
            await expire_once(sessions, self.settings, now=now)
        except Exception:
            # The sweep's other work (assignments to send) must not wait for this one.
            log.exception("personal data expiry failed; next pass in %.0f s", self._every)


async def run_expiry(settings: HubSettings) -> ExpiryReport:
    """One expiry pass on the database of ``settings`` (``benchfleet pii expire``)."""
    from hub.store import create_hub_engine, session_factory

    engine = create_hub_engine(settings.effective_database_url)
    try:
        return await expire_once(session_factory(engine), settings, now=utcnow())
    finally:
        await engine.dispose()
