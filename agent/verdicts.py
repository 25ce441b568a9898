"""Verification verdicts the hub sent for this station's jobs (VerificationNotice on
down/verification), kept for the station screen in memory and in the agent's SQLite (table
``verdicts``), so a restarted station still shows them. Read text and diff are personal data:
shown on the screen, never logged (logs name the job, the step and the verdict)."""

from __future__ import annotations

import logging
import sqlite3
from uuid import UUID

from protocol.models import VerificationNotice

log = logging.getLogger(__name__)
KEEP = 200  # the newest notices held; older ones are of no use at the bench

SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    job_id TEXT NOT NULL,
    step TEXT NOT NULL,
    proof_sha256 TEXT NOT NULL,
    at TEXT NOT NULL,
    notice TEXT NOT NULL,
    PRIMARY KEY (job_id, step, proof_sha256)
);
"""


class Verdicts:
    """The newest notices, by job."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        with db:
            db.executescript(SCHEMA)
        rows = db.execute("SELECT notice FROM verdicts ORDER BY at").fetchall()
        self._notices = [VerificationNotice.model_validate_json(text) for (text,) in rows]

    def on_notice(self, notice: VerificationNotice) -> bool:
        """Keep ``notice`` (a repeat replaces the one for the same proof); True if new."""
        key = (notice.job_id, notice.step, notice.proof_sha256)
        known = [n for n in self._notices if (n.job_id, n.step, n.proof_sha256) == key]
        self._notices = [n for n in self._notices if n not in known] + [notice]
        with self._db:
            self._db.execute(
                "INSERT INTO verdicts (job_id, step, proof_sha256, at, notice) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (job_id, step, proof_sha256) "
                "DO UPDATE SET at = excluded.at, notice = excluded.notice",
                (str(notice.job_id), notice.step, notice.proof_sha256, notice.at.isoformat(),
                 notice.model_dump_json()),
            )  # fmt: skip
            if len(self._notices) > KEEP:
                dropped, self._notices = self._notices[:-KEEP], self._notices[-KEEP:]
                self._db.executemany(
                    "DELETE FROM verdicts WHERE job_id = ? AND step = ? AND proof_sha256 = ?",
                    [(str(n.job_id), n.step, n.proof_sha256) for n in dropped],
                )
        log.info("job %s step %s: verification %s", notice.job_id, notice.step, notice.verdict)
        return not known

    def for_job(self, job_id: UUID) -> list[VerificationNotice]:
        return [n for n in self._notices if n.job_id == job_id]
