"""Proof photos to the hub: chunked through the durable outbox, resumable, reported on refusal.

A kept proof (content-addressed under the station's proofs directory, see
:func:`agent.steps.keep_proof`) becomes ``ceil(size / PROOF_CHUNK_BYTES)`` :class:`ProofChunk`
messages carrying the whole image's SHA-256. Each chunk is enqueued in the transaction that
records it in ``proof_upload_chunks``, so an agent killed half-way through enqueueing resumes
where it stopped (:meth:`ProofUploader.resume`); the outbox keeps every chunk until the hub
acknowledges it, so an upload also survives a lost link or a restart. A chunk the hub refuses
(hash mismatch, too large) becomes a ``proof_rejected`` event naming the proof and the reason.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, cast
from uuid import UUID

from agent.disk import is_disk_full
from agent.events import emit_event
from agent.outbox import MessageId, Outbox
from protocol import topics
from protocol.models import PROOF_CHUNK_BYTES, AckOutcome, ProofChunk, Severity

log = logging.getLogger(__name__)
ContentType = Literal["image/png", "image/jpeg"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS proof_uploads (
    sha256 TEXT PRIMARY KEY,
    job_id TEXT,
    step TEXT,
    content_type TEXT NOT NULL,
    total_bytes INTEGER NOT NULL,
    count INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS proof_upload_chunks (
    sha256 TEXT NOT NULL,
    idx INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (sha256, idx)
);
"""


def chunk_count(total_bytes: int) -> int:
    """How many chunks an image of ``total_bytes`` travels in."""
    return max(1, -(-total_bytes // PROOF_CHUNK_BYTES))


def split(image: bytes) -> Iterator[tuple[int, bytes]]:
    """``(index, raw bytes)`` of each chunk."""
    for index in range(chunk_count(len(image))):
        yield index, image[index * PROOF_CHUNK_BYTES : (index + 1) * PROOF_CHUNK_BYTES]


class ProofUploader:
    """Queues proofs for the hub and watches the hub's answers to their chunks."""

    def __init__(
        self, outbox: Outbox, db: sqlite3.Connection, *, station_id: str, proofs_dir: Path
    ) -> None:
        self._outbox = outbox
        self._db = db
        self._station = station_id
        self.proofs_dir = proofs_dir
        self._watchers: set[asyncio.Task[None]] = set()
        with db:
            db.executescript(SCHEMA)

    def upload(
        self,
        image: bytes,
        *,
        sha256: str,
        job_id: UUID | None,
        step: str | None,
        content_type: str = "image/png",
    ) -> list[MessageId]:
        """Queue every chunk of ``image`` (already kept as ``sha256``); their outbox ids.

        Called again after a full disk refused a chunk part-way (:mod:`agent.persist`), it
        queues only the chunks still missing and watches them all."""
        with self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO proof_uploads (sha256, job_id, step, content_type, "
                "total_bytes, count, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    sha256,
                    str(job_id) if job_id else None,
                    step,
                    content_type,
                    len(image),
                    chunk_count(len(image)),
                    time.time(),
                ),
            )
        self._enqueue_missing(sha256, image)
        ids = [MessageId(epoch, seq) for epoch, seq in self._chunk_ids(sha256)]
        self._watch(sha256, ids)
        log.info("proof %s: %d bytes queued for the hub", sha256[:12], len(image))
        return ids

    def resume(self) -> int:
        """After a restart: queue the chunks a crash left unqueued, watch the ones in flight;
        how many uploads are still open."""
        rows = self._db.execute("SELECT sha256 FROM proof_uploads").fetchall()
        for (sha256,) in rows:
            path = self.proofs_dir / f"{sha256}.png"
            queued = [MessageId(e, s) for e, s in self._chunk_ids(sha256)]
            if len(queued) < self._count(sha256):
                if path.exists():
                    queued += self._enqueue_missing(sha256, path.read_bytes())
                else:
                    log.error("proof %s: file gone, upload cannot finish", sha256[:12])
            pending = [i for i in queued if self._outbox.can_await(i)]
            if pending:
                self._watch(sha256, pending)
            else:
                self._forget(sha256)
        return len(self._db.execute("SELECT 1 FROM proof_uploads").fetchall())

    def pending(self) -> int:
        """Uploads not yet fully answered by the hub."""
        return int(self._db.execute("SELECT count(*) FROM proof_uploads").fetchone()[0])

    async def drain(self) -> None:
        """Wait until every watched upload was answered (tests, orderly shutdown)."""
        while self._watchers:
            await asyncio.gather(*self._watchers, return_exceptions=True)

    # ---- internals ----------------------------------------------------------------------------

    def _count(self, sha256: str) -> int:
        row = self._db.execute("SELECT count FROM proof_uploads WHERE sha256 = ?", (sha256,))
        return int(row.fetchone()[0])

    def _chunk_ids(self, sha256: str) -> list[tuple[int, int]]:
        return self._db.execute(
            "SELECT epoch, seq FROM proof_upload_chunks WHERE sha256 = ? ORDER BY idx", (sha256,)
        ).fetchall()

    def _enqueue_missing(self, sha256: str, image: bytes) -> list[MessageId]:
        job_id, step, content_type = self._db.execute(
            "SELECT job_id, step, content_type FROM proof_uploads WHERE sha256 = ?", (sha256,)
        ).fetchone()
        done = {
            int(row[0])
            for row in self._db.execute(
                "SELECT idx FROM proof_upload_chunks WHERE sha256 = ?", (sha256,)
            )
        }
        count = chunk_count(len(image))
        ids: list[MessageId] = []
        for index, raw in split(image):
            if index in done:
                continue

            def build(epoch: int, seq: int, index: int = index, raw: bytes = raw) -> ProofChunk:
                return ProofChunk(
                    station_id=self._station,
                    epoch=epoch,
                    seq=seq,
                    proof_sha256=sha256,
                    index=index,
                    count=count,
                    total_bytes=len(image),
                    content_type=cast(ContentType, content_type),
                    job_id=UUID(job_id) if job_id else None,
                    step=step,
                    data=base64.b64encode(raw).decode(),
                )

            def record(db: sqlite3.Connection, epoch: int, seq: int, index: int = index) -> None:
                db.execute(
                    "INSERT INTO proof_upload_chunks (sha256, idx, epoch, seq) VALUES (?, ?, ?, ?)",
                    (sha256, index, epoch, seq),
                )

            ids.append(self._outbox.enqueue(topics.Up.PROOF, build, also=record))
        return ids

    def _watch(self, sha256: str, ids: list[MessageId]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(
                self._await_answers(sha256, ids), name=f"proof[{sha256[:12]}]"
            )
        except RuntimeError:
            return  # no loop (a synchronous caller): resume() watches after the next start
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _await_answers(self, sha256: str, ids: list[MessageId]) -> None:
        """Wait for the hub's Ack of each chunk; report the first refusal as an event."""
        reported = False
        for message_id in ids:
            ack = await self._outbox.wait_for_ack(message_id)
            if ack.outcome is AckOutcome.REJECTED and not reported:
                reported = True
                self._report_rejection(sha256, ack.reason or "no reason given")
        self._forget(sha256)  # every queued chunk is answered (a crash mid-queue: resume())

    def _report_rejection(self, sha256: str, reason: str) -> None:
        row = self._db.execute("SELECT job_id FROM proof_uploads WHERE sha256 = ?", (sha256,))
        job_id = (row.fetchone() or (None,))[0]
        log.warning("proof %s rejected by the hub: %s", sha256[:12], reason)
        emit_event(
            self._outbox,
            station_id=self._station,
            kind="proof_rejected",
            severity=Severity.WARNING,
            message=f"proof {sha256}: {reason}",
            job_id=UUID(job_id) if job_id else None,
        )

    def _forget(self, sha256: str) -> None:
        try:
            with self._db:
                self._db.execute("DELETE FROM proof_upload_chunks WHERE sha256 = ?", (sha256,))
                self._db.execute("DELETE FROM proof_uploads WHERE sha256 = ?", (sha256,))
        except sqlite3.OperationalError as err:
            if not is_disk_full(err):
                raise
            # Every chunk is answered: resume() finds nothing to send and forgets it then.
            log.warning("proof %s: answered; its record stays until the next start (%s)",
                        sha256[:12], err)  # fmt: skip
