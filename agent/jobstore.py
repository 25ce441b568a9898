"""The station's local record of its jobs: what the hub last said, and how far we got.

``phase`` is the station's own, write-ahead record: ``started`` is committed before a device
touches the piece, so after a crash the agent knows the piece may be half-engraved.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from agent.outbox import Hook, MessageId
from protocol.models import JobAssignment, JobStatus


class Phase(StrEnum):
    """How far this station got with a job."""

    QUEUED = "queued"  # waiting for its turn (or in the middle of the hub handshake)
    WAITING = "waiting"  # after a restart: needs the hub's re-sent assignment to go on
    STARTED = "started"  # a device may have touched the piece: never run it again
    FINISHED = "finished"  # the final update (done/failed) is in the outbox
    DROPPED = "dropped"  # rejected, cancelled or not ours any more: nothing to do
    VOID = "void"  # dropped after it started here: never run again, whatever the hub sends


TERMINAL = (Phase.FINISHED, Phase.DROPPED, Phase.VOID)


@dataclass(frozen=True, slots=True)
class LocalJob:
    """One row of the jobs table."""

    job_id: UUID
    version: int
    hub_status: JobStatus
    phase: Phase
    pending: MessageId | None
    assignment: JobAssignment


class JobStore:
    """The ``jobs`` table of the agent's database."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def get(self, job_id: UUID) -> LocalJob | None:
        row = self._db.execute("SELECT * FROM jobs WHERE job_id = ?", (str(job_id),)).fetchone()
        return None if row is None else _to_job(row)

    def unfinished(self) -> list[LocalJob]:
        """Jobs not finished or dropped, in order of arrival."""
        rows = self._db.execute(
            "SELECT * FROM jobs WHERE phase NOT IN (?, ?, ?) ORDER BY arrived_at", TERMINAL
        )
        return [_to_job(row) for row in rows]

    def insert(self, assignment: JobAssignment) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO jobs (job_id, version, hub_status, phase, assignment, arrived_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    str(assignment.job_id),
                    assignment.version,
                    assignment.status.value,
                    Phase.QUEUED.value,
                    assignment.model_dump_json(),
                    time.time(),
                ),
            )

    def set_hub_state(self, job_id: UUID, version: int, status: JobStatus) -> None:
        """Record what the hub says now; the pending update (if any) is answered."""
        with self._db:
            self._db.execute(
                "UPDATE jobs SET version = ?, hub_status = ?, pending_epoch = NULL, "
                "pending_seq = NULL WHERE job_id = ?",
                (version, status.value, str(job_id)),
            )

    def set_phase(self, job_id: UUID, phase: Phase) -> None:
        with self._db:
            self._db.execute(
                "UPDATE jobs SET phase = ? WHERE job_id = ?", (phase.value, str(job_id))
            )

    def drop(self, job_id: UUID) -> None:
        """Nothing more to do for this job (a finished job stays finished; a started one
        becomes void, so no later assignment can ever run it again)."""
        with self._db:
            self._db.execute(
                "UPDATE jobs SET phase = CASE phase WHEN ? THEN ? ELSE ? END, "
                "pending_epoch = NULL, pending_seq = NULL WHERE job_id = ? AND phase NOT IN (?, ?)",
                (
                    Phase.STARTED.value,
                    Phase.VOID.value,
                    Phase.DROPPED.value,
                    str(job_id),
                    Phase.FINISHED.value,
                    Phase.VOID.value,
                ),
            )

    def reassigned(self, assignment: JobAssignment) -> None:
        """The hub assigned a job we dropped again (a newer version): start it afresh."""
        with self._db:
            self._db.execute(
                "UPDATE jobs SET version = ?, hub_status = ?, phase = ?, assignment = ?, "
                "pending_epoch = NULL, pending_seq = NULL WHERE job_id = ? AND phase = ?",
                (
                    assignment.version,
                    assignment.status.value,
                    Phase.QUEUED.value,
                    assignment.model_dump_json(),
                    str(assignment.job_id),
                    Phase.DROPPED.value,
                ),
            )

    @staticmethod
    def pending_hook(job_id: UUID, phase: Phase | None = None) -> Hook:
        """An outbox hook recording the update as pending (and a phase) in its transaction."""

        def record(db: sqlite3.Connection, epoch: int, seq: int) -> None:
            db.execute(
                "UPDATE jobs SET pending_epoch = ?, pending_seq = ?, phase = coalesce(?, phase) "
                "WHERE job_id = ?",
                (epoch, seq, phase.value if phase else None, str(job_id)),
            )

        return record


def _to_job(row: tuple[str, int, str, str, int | None, int | None, str, float]) -> LocalJob:
    job_id, version, status, phase, pending_epoch, pending_seq, assignment, _arrived = row
    pending = None
    if pending_epoch is not None and pending_seq is not None:
        pending = MessageId(pending_epoch, pending_seq)
    return LocalJob(
        job_id=UUID(job_id),
        version=version,
        hub_status=JobStatus(status),
        phase=Phase(phase),
        pending=pending,
        assignment=JobAssignment.model_validate_json(assignment),
    )
