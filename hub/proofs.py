"""Proof photos arriving in chunks: validate, stage, assemble, store content-addressed.

A station uploads a photo as :class:`ProofChunk` messages through its outbox (resumable: every
chunk stays there until our Ack). Each chunk is staged as a ``proof_chunks`` row keyed by
``(proof_sha256, idx)`` in the transaction that records its inbox entry, so a re-delivered chunk
changes nothing. When the last one is in, the image is assembled, its SHA-256 checked, written to
``<proofs_dir>/<aa>/<sha256>.<ext>`` (fsync, atomic rename) and recorded in ``proofs``; the
chunks are dropped. A proof is complete only when its hash verifies (DESIGN.md §4). The chunks
of an upload that never completes are removed by :func:`expire_staged` (the sweeper).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.metrics import PROOF_CHUNKS_EXPIRED, PROOF_UPLOADS_EXPIRED
from hub.settings import HubSettings
from hub.store.proofs_tables import ProofChunkRecord, ProofRecord
from protocol.models import PROOF_CHUNK_BYTES, PROOF_MAX_BYTES, ProofChunk

log = logging.getLogger(__name__)

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg"}
# Not a valid module name on purpose: the demo runs the hub with its data dir (``hub/``) below
# the working directory, and a ``hub/proofs/`` folder there would shadow this module as a
# namespace package for any process that imports it afterwards (the OCR workers, a restart).
DEFAULT_DIR_NAME = "proof-photos"


@dataclass(frozen=True, slots=True)
class ProofConfig:
    """Where proofs go and how large they may be (from :class:`HubSettings`)."""

    proofs_dir: Path
    max_bytes: int = PROOF_MAX_BYTES

    @classmethod
    def from_settings(cls, settings: HubSettings) -> ProofConfig:
        return cls(
            proofs_dir=settings.proofs_dir or settings.data_dir / DEFAULT_DIR_NAME,
            max_bytes=min(settings.proof_max_bytes, PROOF_MAX_BYTES),
        )


_current: list[ProofConfig] = []  # the process's proof store: none, or one
# Proofs this process completed since the verification runner last looked: it reads the late
# ones among them without scanning every job (hub.verification_runner.find_late).
_completed: set[str] = set()


def configure(config: ProofConfig) -> None:
    """Set the process's proof store (the hub link does this at start-up). Ingest reaches the
    store through this instead of new parameters on every ingest function."""
    _current[:] = [config]


def current_config() -> ProofConfig:
    """The configured store, or one from the environment's settings (tools, tests)."""
    if not _current:
        _current.append(ProofConfig.from_settings(HubSettings()))
    return _current[0]


def completed_proofs() -> set[str]:
    """The SHA-256 of the proofs completed since :func:`forget_completed` was last told about
    them (a hint: one may belong to a transaction that rolled back)."""
    return set(_completed)


def forget_completed(shas: set[str]) -> None:
    """The runner has looked at ``shas`` (called only after it did: a failed look retries)."""
    _completed.difference_update(shas)


def proof_path(proofs_dir: Path, sha256: str, content_type: str = "image/png") -> Path:
    """Where the proof with ``sha256`` lives: fanned out by its first two hex digits."""
    return proofs_dir / sha256[:2] / f"{sha256}.{EXTENSIONS.get(content_type, 'bin')}"


@dataclass(frozen=True, slots=True)
class ChunkOutcome:
    """What happened to one chunk: ``rejected`` carries the reason for the Ack."""

    rejected: str | None = None
    completed: ProofRecord | None = None
    duplicate: bool = False


class ChunkError(ValueError):
    """A chunk that cannot be used; the message is the Ack's reason."""


def decode_chunk(chunk: ProofChunk, *, max_bytes: int) -> bytes:
    """The chunk's raw bytes after the checks that need no other chunk."""
    if chunk.total_bytes > max_bytes:
        raise ChunkError(f"proof of {chunk.total_bytes} bytes exceeds the limit of {max_bytes}")
    if chunk.index >= chunk.count:
        raise ChunkError(f"chunk index {chunk.index} is not below its count {chunk.count}")
    expected_count = -(-chunk.total_bytes // PROOF_CHUNK_BYTES)  # every chunk full but the last
    if chunk.count != expected_count:
        raise ChunkError(
            f"chunk count {chunk.count} does not fit {chunk.total_bytes} bytes "
            f"in chunks of {PROOF_CHUNK_BYTES} (expected {expected_count})"
        )
    try:
        raw = base64.b64decode(chunk.data, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ChunkError(f"chunk {chunk.index} is not valid base64 ({err})") from err
    if not raw or len(raw) > PROOF_CHUNK_BYTES:
        raise ChunkError(f"chunk {chunk.index} holds {len(raw)} bytes (1..{PROOF_CHUNK_BYTES})")
    return raw


async def _check_consistent(session: AsyncSession, chunk: ProofChunk) -> None:
    """Every chunk of one proof must agree on its count, size and type."""
    first = (
        await session.execute(
            select(ProofChunkRecord).where(ProofChunkRecord.proof_sha256 == chunk.proof_sha256)
        )
    ).scalar()
    if first is None:
        return
    theirs = (first.count, first.total_bytes, first.content_type)
    mine = (chunk.count, chunk.total_bytes, chunk.content_type)
    if theirs != mine:
        raise ChunkError(
            f"chunk {chunk.index} says count/total/type {mine}, earlier chunks said {theirs}"
        )


async def receive_chunk(
    session: AsyncSession, chunk: ProofChunk, *, now: datetime, config: ProofConfig | None = None
) -> ChunkOutcome:
    """Stage one chunk in the caller's transaction; assemble the proof when it is complete."""
    config = config or current_config()
    if await session.get(ProofRecord, chunk.proof_sha256) is not None:
        return ChunkOutcome(duplicate=True)  # already complete: a re-sent proof changes nothing
    try:
        raw = decode_chunk(chunk, max_bytes=config.max_bytes)
        await _check_consistent(session, chunk)
    except ChunkError as err:
        log.warning("proof %s from %s: %s", chunk.proof_sha256[:12], chunk.station_id, err)
        return ChunkOutcome(rejected=str(err))
    key = (chunk.proof_sha256, chunk.index)
    if await session.get(ProofChunkRecord, key) is not None:
        return ChunkOutcome(duplicate=True)
    session.add(_chunk_row(chunk, raw, now))
    await session.flush()
    have = await session.scalar(
        select(func.count()).where(ProofChunkRecord.proof_sha256 == chunk.proof_sha256)
    )
    if have != chunk.count:
        return ChunkOutcome()
    return await _assemble(session, chunk, now=now, config=config)


def _chunk_row(chunk: ProofChunk, raw: bytes, now: datetime) -> ProofChunkRecord:
    return ProofChunkRecord(
        proof_sha256=chunk.proof_sha256,
        idx=chunk.index,
        count=chunk.count,
        total_bytes=chunk.total_bytes,
        content_type=chunk.content_type,
        station_id=chunk.station_id,
        job_id=chunk.job_id,
        step=chunk.step,
        data=raw,
        received_at=now,
    )


async def _assemble(
    session: AsyncSession, chunk: ProofChunk, *, now: datetime, config: ProofConfig
) -> ChunkOutcome:
    """All chunks are in: check the whole image's hash, keep it, drop the chunks."""
    sha = chunk.proof_sha256
    parts = await session.scalars(
        select(ProofChunkRecord.data)
        .where(ProofChunkRecord.proof_sha256 == sha)
        .order_by(ProofChunkRecord.idx)
    )
    image = b"".join(parts)
    await session.execute(delete(ProofChunkRecord).where(ProofChunkRecord.proof_sha256 == sha))
    actual = hashlib.sha256(image).hexdigest()
    if len(image) != chunk.total_bytes or actual != sha:
        reason = (
            f"proof sha256 mismatch: assembled {len(image)} bytes hashing to {actual[:12]}..., "
            f"expected {chunk.total_bytes} bytes hashing to {sha[:12]}...; chunks dropped, re-send"
        )
        log.warning("proof %s from %s: %s", sha[:12], chunk.station_id, reason)
        return ChunkOutcome(rejected=reason)
    path = proof_path(config.proofs_dir, sha, chunk.content_type)
    await asyncio.to_thread(write_atomically, path, image)
    record = ProofRecord(
        sha256=sha,
        bytes=len(image),
        content_type=chunk.content_type,
        station_id=chunk.station_id,
        job_id=chunk.job_id,
        step=chunk.step,
        received_at=now,
    )
    session.add(record)
    _completed.add(sha)
    log.info("proof %s complete: %d bytes from %s", sha[:12], len(image), chunk.station_id)
    return ChunkOutcome(completed=record)


@dataclass(frozen=True, slots=True)
class StagedExpiry:
    """What one clean-up of abandoned uploads removed."""

    uploads: int = 0
    chunks: int = 0


async def expire_staged(
    sessions: async_sessionmaker[AsyncSession], *, now: datetime, max_age_s: float
) -> StagedExpiry:
    """Remove the staged chunks of uploads that received no chunk for ``max_age_s``, in its own
    transaction; counted on /metrics and logged after the commit (counts only, never contents).

    An upload's age is that of its newest chunk, so an upload still in progress is kept however
    long ago it began. Only ``proof_chunks`` is touched: a complete proof is a ``proofs`` row and
    a file, never staged, so nothing here can remove it.
    """
    cutoff = now - timedelta(seconds=max_age_s)
    async with sessions.begin() as session:
        stale = list(
            await session.scalars(
                select(ProofChunkRecord.proof_sha256)
                .group_by(ProofChunkRecord.proof_sha256)
                .having(func.max(ProofChunkRecord.received_at) < cutoff)
            )
        )
        if not stale:
            return StagedExpiry()
        # received_at < cutoff again: a chunk another hub staged since the query stays.
        result = await session.execute(
            delete(ProofChunkRecord).where(
                ProofChunkRecord.proof_sha256.in_(stale), ProofChunkRecord.received_at < cutoff
            )
        )
        chunks = int(getattr(result, "rowcount", 0) or 0)
    if not chunks:  # another hub on the same database removed them first
        return StagedExpiry()
    PROOF_UPLOADS_EXPIRED.inc(len(stale))
    PROOF_CHUNKS_EXPIRED.inc(chunks)
    log.info(
        "removed %d abandoned proof upload(s), %d staged chunk(s), idle for over %.0f s",
        len(stale),
        chunks,
        max_age_s,
    )
    return StagedExpiry(uploads=len(stale), chunks=chunks)


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a reader sees all of it or nothing, durably: a temporary
    file, fsync, rename, fsync of the directory. Same content, same name: a rewrite is harmless."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        with partial.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_proof(config: ProofConfig, record: ProofRecord) -> bytes:
    """The stored image of ``record``; raises ``FileNotFoundError`` if the file went missing,
    ``ValueError`` if it no longer hashes to its name (tampered or corrupted on disk)."""
    data = proof_path(config.proofs_dir, record.sha256, record.content_type).read_bytes()
    if hashlib.sha256(data).hexdigest() != record.sha256:
        raise ValueError(f"proof file {record.sha256[:12]}... does not match its hash")
    return data
