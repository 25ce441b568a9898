"""Proof chunks through the hub's real ingest path, on SQLite and PostgreSQL: assembly into a
content-addressed file, duplicates, hash mismatch, oversize and malformed chunks."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub import proofs
from hub.dispatch import Outgoing
from hub.ingest import handle_message
from hub.proofs import ProofConfig, proof_path
from hub.store.proofs_tables import ProofChunkRecord, ProofRecord
from protocol import encode, topics
from protocol.models import PROOF_CHUNK_BYTES, Ack, ProofChunk

Sessions = async_sessionmaker[AsyncSession]
_seq = iter(range(1, 1_000_000))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ProofConfig]:
    """A proof store under tmp_path for the ingest path (restored afterwards)."""
    saved = list(proofs._current)
    config = ProofConfig(proofs_dir=tmp_path / "proofs")
    proofs.configure(config)
    yield config
    proofs._current[:] = saved


def chunks_of(
    image: bytes, *, sha: str | None = None, station: str = "st-a", **over: Any
) -> list[ProofChunk]:
    sha = sha or hashlib.sha256(image).hexdigest()
    parts = [image[i : i + PROOF_CHUNK_BYTES] for i in range(0, len(image), PROOF_CHUNK_BYTES)]
    return [
        ProofChunk.model_validate(
            {
                "station_id": station,
                "epoch": 1,
                "seq": next(_seq),
                "proof_sha256": sha,
                "index": index,
                "count": len(parts),
                "total_bytes": len(image),
                "step": "engraving_photo",
                "data": base64.b64encode(part).decode(),
                **over,
            }
        )
        for index, part in enumerate(parts)
    ]


async def send(sessions: Sessions, chunk: ProofChunk) -> Ack:
    out: list[Outgoing] = await handle_message(
        sessions, topic=topics.up(chunk.station_id, topics.Up.PROOF), payload=encode(chunk)
    )
    acks = [o.message for o in out if isinstance(o.message, Ack)]
    assert len(acks) == 1
    return acks[0]


async def count(sessions: Sessions, model: type[ProofChunkRecord] | type[ProofRecord]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.asyncio
async def test_chunks_in_any_order_with_duplicates_assemble_one_file(
    sessions: Sessions, store: ProofConfig
) -> None:
    image = os.urandom(2 * PROOF_CHUNK_BYTES + 1234)  # three chunks, the last one short
    sha = hashlib.sha256(image).hexdigest()
    first, second, third = chunks_of(image)
    answers = [await send(sessions, c) for c in (third, first, first, second)]
    assert [a.outcome for a in answers] == ["accepted"] * 4
    assert await count(sessions, ProofChunkRecord) == 0  # staged chunks dropped once assembled
    path = proof_path(store.proofs_dir, sha)
    assert path == store.proofs_dir / sha[:2] / f"{sha}.png"
    assert path.read_bytes() == image
    async with sessions() as session:
        record = await session.get_one(ProofRecord, sha)
    assert (record.bytes, record.station_id, record.step) == (len(image), "st-a", "engraving_photo")
    assert not list(path.parent.glob("*.part"))  # nothing half-written left behind


@pytest.mark.asyncio
async def test_a_complete_proof_sent_again_is_accepted_and_changes_nothing(
    sessions: Sessions, store: ProofConfig
) -> None:
    image = os.urandom(1000)
    [chunk] = chunks_of(image)
    assert (await send(sessions, chunk)).outcome == "accepted"
    again = await send(sessions, chunks_of(image)[0])  # new (epoch, seq): not an inbox duplicate
    assert (again.outcome, again.duplicate) == ("accepted", False)
    assert await count(sessions, ProofRecord) == 1
    assert await count(sessions, ProofChunkRecord) == 0


@pytest.mark.asyncio
async def test_hash_mismatch_rejects_the_completing_chunk_and_drops_the_rest(
    sessions: Sessions, store: ProofConfig
) -> None:
    image = os.urandom(PROOF_CHUNK_BYTES + 10)
    good = chunks_of(image)
    bad_sha = hashlib.sha256(b"another image").hexdigest()
    first, last = chunks_of(image, sha=bad_sha)
    assert (await send(sessions, first)).outcome == "accepted"
    answer = await send(sessions, last)
    assert answer.outcome == "rejected"
    assert (answer.reason or "").startswith("proof sha256 mismatch")
    assert await count(sessions, ProofChunkRecord) == 0
    assert await count(sessions, ProofRecord) == 0
    assert not proof_path(store.proofs_dir, bad_sha).exists()
    # the station may re-send under the right hash: it completes
    assert [(await send(sessions, c)).outcome for c in good] == ["accepted", "accepted"]
    assert proof_path(store.proofs_dir, good[0].proof_sha256).read_bytes() == image


@pytest.mark.asyncio
async def test_oversize_proofs_are_refused_at_their_first_chunk(
    sessions: Sessions, store: ProofConfig
) -> None:
    proofs.configure(ProofConfig(proofs_dir=store.proofs_dir, max_bytes=PROOF_CHUNK_BYTES))
    image = os.urandom(PROOF_CHUNK_BYTES + 1)
    answer = await send(sessions, chunks_of(image)[0])
    assert answer.outcome == "rejected"
    assert answer.reason == f"proof of {len(image)} bytes exceeds the limit of {PROOF_CHUNK_BYTES}"
    assert await count(sessions, ProofChunkRecord) == 0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"data": "not base64!"}, "is not valid base64"),
        ({"index": 1}, "chunk index 1 is not below its count 1"),
        ({"count": 3}, "chunk count 3 does not fit"),
    ],
)
async def test_malformed_chunks_are_rejected_with_a_reason(
    sessions: Sessions, store: ProofConfig, change: dict[str, Any], reason: str
) -> None:
    [chunk] = chunks_of(os.urandom(100), **change)
    answer = await send(sessions, chunk)
    assert answer.outcome == "rejected"
    assert reason in (answer.reason or "")
    assert await count(sessions, ProofChunkRecord) == 0


@pytest.mark.asyncio
async def test_chunks_that_disagree_on_the_proof_are_rejected(
    sessions: Sessions, store: ProofConfig
) -> None:
    image = os.urandom(PROOF_CHUNK_BYTES + 10)
    first, second = chunks_of(image)
    liar = second.model_copy(update={"total_bytes": len(image) + 1, "seq": next(_seq)})
    assert (await send(sessions, first)).outcome == "accepted"
    answer = await send(sessions, liar)
    assert answer.outcome == "rejected"
    assert "earlier chunks said" in (answer.reason or "")
    assert (await send(sessions, second)).outcome == "accepted"  # the honest one still completes
    assert await count(sessions, ProofRecord) == 1
