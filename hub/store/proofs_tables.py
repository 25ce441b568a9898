"""ORM tables of proofs (migration 0004). Registered on :class:`hub.store.models.Base` by the
import at the end of :mod:`hub.store.models`.

- ``proof_chunks``: chunks of uploads still in progress, keyed by (proof_sha256, idx); dropped
  once the proof is assembled (or its hash failed).
- ``proofs``: complete proofs whose SHA-256 verified; the image itself is a content-addressed
  file under the hub's proofs directory (:mod:`hub.proofs`).
- ``verifications``: one OCR verification of one job step's proof (:mod:`hub.verification_runner`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, LargeBinary, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from hub.store.models import Base

__all__ = ["Base", "ProofChunkRecord", "ProofRecord", "VerificationRecord"]


class ProofChunkRecord(Base):
    __tablename__ = "proof_chunks"

    proof_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer)
    total_bytes: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(32))
    station_id: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    step: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime]


class ProofRecord(Base):
    __tablename__ = "proofs"
    __table_args__ = (Index("ix_proofs_job_id", "job_id"),)

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    bytes: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(32))
    station_id: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    step: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime]


class VerificationRecord(Base):
    """The diff and read text are personal data (they spell the engraving): kept here for
    review, never in the audit log (which keeps hashes and the verdict) nor in logs."""

    __tablename__ = "verifications"
    __table_args__ = (
        Index("ux_verifications_job_step_proof", "job_id", "step", "proof_sha256", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    step: Mapped[str | None] = mapped_column(String(64))
    proof_sha256: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(16))
    read_text: Mapped[str] = mapped_column(Text, default="")
    diff: Mapped[list[Any]] = mapped_column(JSON, default=list)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    engine: Mapped[str] = mapped_column(String(80))
    elapsed_ms: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime]
