"""The chain-of-custody dossier of one order: what was done to each piece, by whom, where,
when, with which evidence, and whether the audit chain still vouches for it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.audit import entries_for_order, entry_intact
from hub.orders import jobs_of_order
from hub.store.models import EvidenceRecord, Job, JobTransition, Order
from hub.transitions import plan_of


async def find_order(session: AsyncSession, ref: str) -> Order | None:
    """An order by its id or its external id."""
    try:
        order = await session.get(Order, uuid.UUID(ref))
    except ValueError:
        order = None
    if order is not None:
        return order
    return (await session.scalars(select(Order).where(Order.external_id == ref))).one_or_none()


def _line_summary(line: dict[str, Any]) -> dict[str, Any]:
    """The order line for the record, without the gift message (not custody information)."""
    summary = {k: v for k, v in line.items() if k != "packaging"}
    if packaging := line.get("packaging"):
        summary["packaging"] = {k: v for k, v in packaging.items() if k != "gift_message"}
    return summary


async def _job_record(session: AsyncSession, job: Job) -> dict[str, Any]:
    history = await session.scalars(
        select(JobTransition).where(JobTransition.job_id == job.id).order_by(JobTransition.id)
    )
    evidence = (
        await session.scalars(
            select(EvidenceRecord)
            .where(EvidenceRecord.job_id == job.id)
            .order_by(EvidenceRecord.id)
        )
    ).all()
    steps = []
    for step in plan_of(job):
        progress = job.progress.get(step.name, {})
        steps.append(
            {
                "name": step.name,
                "kind": step.kind.value,
                "evidence_required": list(step.evidence),
                "signoff_required": step.signoff_required,
                "irreversible": step.irreversible,
                "state": progress.get("state", "pending"),
                "at": progress.get("at"),
                "missing": progress.get("missing", []),
                "evidence": [
                    {
                        "kind": e.kind,
                        "sha256": e.sha256,
                        "value": e.value,
                        "unit": e.unit,
                        "code": e.code,
                        "by": e.by,
                        "station_id": e.station_id,
                        "at": e.at.isoformat(),
                    }
                    for e in evidence
                    if e.step == step.name
                ],
            }
        )
    return {
        "job_id": str(job.id),
        "line_id": job.line_id,
        "status": job.status,
        "version": job.version,
        "station_id": job.station_id,
        "origin": job.origin,
        "approved_by": job.approved_by,
        "irreversible_started": job.started,
        "steps": steps,
        "history": [
            {
                "from": t.from_status,
                "to": t.to_status,
                "version": t.version,
                "actor": t.actor,
                "reason": t.reason,
                "at": t.at.isoformat(),
            }
            for t in history
        ],
    }


async def build_dossier(session: AsyncSession, *, order: Order) -> dict[str, Any]:
    """The whole record of ``order`` as plain JSON-ready data."""
    jobs = await jobs_of_order(session, order_id=order.id)
    entries = await entries_for_order(session, order_id=order.id)
    audit = [
        {
            "seq": e.seq,
            "at": e.at.isoformat(),
            "actor": e.actor,
            "action": e.action,
            "job_id": str(e.job_id) if e.job_id else None,
            "station_id": e.station_id,
            "data": e.data,
            "prev_hash": e.prev_hash,
            "hash": e.hash,
            "intact": entry_intact(e),
        }
        for e in entries
    ]
    return {
        "order": {
            "order_id": str(order.id),
            "external_id": order.external_id,
            "created_at": order.created_at.isoformat(),
            "due_at": order.due_at.isoformat(),
            "rush": order.rush,
            "integrator": order.integrator,
            "content_sha256": order.content_sha256,
            "lines": [_line_summary(line) for line in order.request.get("lines", [])],
        },
        "jobs": [await _job_record(session, job) for job in jobs],
        "audit": audit,
        "audit_intact": all(entry["intact"] for entry in audit),
        "verify_whole_chain": "benchfleet audit verify",
    }
