"""Abandoned proof uploads, on SQLite and PostgreSQL: the staged chunks of an upload idle for
longer than ``proof_stage_max_age_s`` are removed, counted on /metrics and logged (counts, not
contents); an upload still in progress and every completed proof stay.

Chunks are staged through :func:`hub.proofs.receive_chunk` with the time they "arrived" (no
sleeping), and through the hub's real ingest path for those arriving now.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub import proofs
from hub.ingest import handle_message
from hub.mqtt import HubLink
from hub.proofs import ProofConfig, StagedExpiry, expire_staged, proof_path, receive_chunk
from hub.settings import HubSettings
from hub.store.proofs_tables import ProofChunkRecord, ProofRecord
from protocol import encode, topics
from protocol.models import PROOF_CHUNK_BYTES, ProofChunk, utcnow

Sessions = async_sessionmaker[AsyncSession]
DAY_S = 86_400.0
_seq = iter(range(1, 1_000_000))

pytestmark = pytest.mark.asyncio


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ProofConfig]:
    """A proof store under tmp_path for the ingest path (restored afterwards)."""
    saved = list(proofs._current)
    config = ProofConfig(proofs_dir=tmp_path / "hub" / proofs.DEFAULT_DIR_NAME)
    proofs.configure(config)
    yield config
    proofs._current[:] = saved


def chunks_of(image: bytes) -> list[ProofChunk]:
    sha = hashlib.sha256(image).hexdigest()
    parts = [image[i : i + PROOF_CHUNK_BYTES] for i in range(0, len(image), PROOF_CHUNK_BYTES)]
    return [
        ProofChunk(
            station_id="st-a",
            epoch=1,
            seq=next(_seq),
            proof_sha256=sha,
            index=index,
            count=len(parts),
            total_bytes=len(image),
            step="engraving_photo",
            data=base64.b64encode(part).decode(),
        )
        for index, part in enumerate(parts)
    ]


def three_chunks() -> list[ProofChunk]:
    return chunks_of(os.urandom(2 * PROOF_CHUNK_BYTES + 99))


async def stage(sessions: Sessions, chunk: ProofChunk, at: datetime, store: ProofConfig) -> None:
    """One chunk, received at ``at``."""
    async with sessions.begin() as session:
        outcome = await receive_chunk(session, chunk, now=at, config=store)
    assert outcome.rejected is None


async def staged(sessions: Sessions) -> dict[str, int]:
    """Staged chunks per upload."""
    async with sessions() as session:
        rows = await session.execute(
            select(ProofChunkRecord.proof_sha256, func.count()).group_by(
                ProofChunkRecord.proof_sha256
            )
        )
        return {sha: int(n) for sha, n in rows.all()}


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_abandoned_uploads_go_in_progress_and_completed_ones_stay(
    sessions: Sessions, store: ProofConfig, caplog: pytest.LogCaptureFixture
) -> None:
    now = utcnow()
    long_ago, just_now = now - timedelta(days=2), now - timedelta(minutes=1)
    uploads = {
        "abandoned": three_chunks(),
        "slow": three_chunks(),
        "fresh": three_chunks(),
        "completed": chunks_of(os.urandom(1500)),  # one chunk: assembled at once
    }
    sha = {name: chunks[0].proof_sha256 for name, chunks in uploads.items()}
    for chunk in uploads["abandoned"][:2]:
        await stage(sessions, chunk, long_ago, store)
    await stage(sessions, uploads["slow"][0], long_ago, store)  # began long ago ...
    await stage(sessions, uploads["slow"][1], just_now, store)  # ... and is still arriving
    await stage(sessions, uploads["fresh"][0], just_now, store)
    await stage(sessions, uploads["completed"][0], long_ago, store)
    assert await staged(sessions) == {sha["abandoned"]: 2, sha["slow"]: 2, sha["fresh"]: 1}
    uploads_before = counter("benchfleet_hub_proof_uploads_expired_total")
    chunks_before = counter("benchfleet_hub_proof_chunks_expired_total")

    with caplog.at_level(logging.INFO, logger="hub.proofs"):
        removed = await expire_staged(sessions, now=now, max_age_s=DAY_S)

    assert removed == StagedExpiry(uploads=1, chunks=2)
    assert await staged(sessions) == {sha["slow"]: 2, sha["fresh"]: 1}
    assert counter("benchfleet_hub_proof_uploads_expired_total") == uploads_before + 1
    assert counter("benchfleet_hub_proof_chunks_expired_total") == chunks_before + 2
    [message] = [r.getMessage() for r in caplog.records if "abandoned" in r.getMessage()]
    assert "1 abandoned proof upload(s), 2 staged chunk(s)" in message
    assert sha["abandoned"][:12] not in message  # counts only
    async with sessions() as session:
        assert await session.get(ProofRecord, sha["completed"]) is not None
    assert proof_path(store.proofs_dir, sha["completed"]).exists()
    # Nothing left to remove: a second pass changes nothing and counts nothing.
    assert await expire_staged(sessions, now=now, max_age_s=DAY_S) == StagedExpiry()
    assert counter("benchfleet_hub_proof_uploads_expired_total") == uploads_before + 1
    # The slow upload still completes through the real ingest path.
    await handle_message(
        sessions, topic=topics.up("st-a", topics.Up.PROOF), payload=encode(uploads["slow"][2])
    )
    async with sessions() as session:
        assert await session.get(ProofRecord, sha["slow"]) is not None
    assert await staged(sessions) == {sha["fresh"]: 1}


async def test_the_sweeper_removes_abandoned_uploads(
    sessions: Sessions, store: ProofConfig, tmp_path: Path
) -> None:
    """The wiring in hub/mqtt.py: one sweeper round (no broker needed for the round itself)."""
    settings = HubSettings(_env_file=None, data_dir=tmp_path / "hub", proof_stage_max_age_s=DAY_S)  # type: ignore[call-arg]
    link = HubLink(settings=settings, sessions=sessions, started_at=utcnow())
    abandoned, fresh = three_chunks(), three_chunks()
    await stage(sessions, abandoned[0], utcnow() - timedelta(seconds=DAY_S + 60), store)
    await stage(sessions, fresh[0], utcnow() - timedelta(seconds=DAY_S - 60), store)
    await link.serialised(link._sweep_once)
    assert await staged(sessions) == {fresh[0].proof_sha256: 1}


async def test_the_counters_are_on_the_hubs_metrics(api: httpx.AsyncClient) -> None:
    text = (await api.get("/metrics")).text
    assert "benchfleet_hub_proof_uploads_expired_total" in text
    assert "benchfleet_hub_proof_chunks_expired_total" in text
    assert "benchfleet_hub_proof_timeouts_total" in text
