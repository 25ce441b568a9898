"""Proof uploads with the real outbox and the hub's real ingest (no broker: this test delivers
what the link would publish, and loses what a broken link would lose): lost chunks are re-sent
after a reconnect, an upload resumes after an agent restart, an upload a full disk cut short is
finished by calling it again, a refusal becomes an event."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Collection, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agent.db import open_db
from agent.outbox import Outbox, OutboxFullError
from agent.proofs import ProofUploader, chunk_count
from agent.steps import keep_proof
from hub import proofs
from hub.ingest import handle_message
from hub.proofs import ProofConfig, proof_path
from hub.store import create_hub_engine, session_factory, upgrade_to_head
from protocol.models import PROOF_CHUNK_BYTES, Ack

STATION = "st-01"
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ProofConfig]:
    saved = list(proofs._current)
    config = ProofConfig(proofs_dir=tmp_path / "hub-proofs")
    proofs.configure(config)
    yield config
    proofs._current[:] = saved


@pytest_asyncio.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Sessions]:
    """The hub's database (SQLite) behind its real ingest function."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade_to_head(url)
    engine = create_hub_engine(url)
    yield session_factory(engine)
    await engine.dispose()


class Station:
    """An agent's database, outbox and uploader; :meth:`restart` reopens them."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.open()

    def open(self) -> None:
        self.db = open_db(self.data_dir)
        self.outbox = Outbox(self.db, STATION, resend_after_s=60)
        self.uploader = ProofUploader(
            self.outbox, self.db, station_id=STATION, proofs_dir=self.data_dir / "proofs"
        )

    def restart(self) -> None:
        self.db.close()
        self.open()

    def photo(self, size: int) -> tuple[bytes, str]:
        image = os.urandom(size)
        return image, keep_proof(image, self.data_dir / "proofs")

    async def deliver(self, hub: Sessions, *, lose: Collection[int] = ()) -> int:
        """Publish what is due; chunks whose index is in ``lose`` vanish on the way. Returns
        how many messages reached the hub."""
        reached = 0
        for entry in self.outbox.due(time.time(), window=100):
            self.outbox.mark_sent(entry.id, time.time())
            body = json.loads(entry.payload)
            if body.get("index") in lose:
                continue
            out = await handle_message(hub, topic=entry.topic, payload=entry.payload)
            reached += 1
            for item in out:
                if isinstance(item.message, Ack):
                    self.outbox.ack(item.message)
        await asyncio.sleep(0)  # let the uploader's watchers see their answers
        return reached


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    station = Station(tmp_path / "station")
    yield station
    station.db.close()


@pytest.mark.asyncio
async def test_lost_chunks_are_sent_again_after_a_reconnect(
    station: Station, hub: Sessions, store: ProofConfig
) -> None:
    image, sha = station.photo(3 * PROOF_CHUNK_BYTES + 77)
    ids = station.uploader.upload(image, sha256=sha, job_id=None, step="engraving_photo")
    assert len(ids) == chunk_count(len(image)) == 4
    assert await station.deliver(hub, lose={1, 2}) == 2
    assert not proof_path(store.proofs_dir, sha).exists()
    assert station.outbox.depth()[1] == 2  # the lost ones wait for their Ack
    station.outbox.resend_all_now()  # what the link does on every (re)connect
    assert await station.deliver(hub) == 2
    assert proof_path(store.proofs_dir, sha).read_bytes() == image
    await asyncio.wait_for(station.uploader.drain(), 5)
    assert station.uploader.pending() == 0
    assert station.outbox.depth()[1] == 0


@pytest.mark.asyncio
async def test_an_upload_resumes_after_a_restart_even_if_it_was_half_queued(
    station: Station, hub: Sessions, store: ProofConfig
) -> None:
    image, sha = station.photo(2 * PROOF_CHUNK_BYTES + 5)
    first, _second, third = station.uploader.upload(
        image, sha256=sha, job_id=None, step="engraving_photo"
    )
    with station.db:  # as if the agent died before it queued the last chunk
        station.db.execute("DELETE FROM outbox WHERE epoch = ? AND seq = ?", third)
        station.db.execute("DELETE FROM proof_upload_chunks WHERE idx = 2")
    assert await station.deliver(hub, lose={1}) == 1
    station.restart()
    assert station.outbox.epoch == first.epoch + 1
    assert station.uploader.resume() == 1
    station.outbox.resend_all_now()
    assert await station.deliver(hub) == 2  # chunk 1 (old epoch, same seq) and chunk 2 (new)
    assert proof_path(store.proofs_dir, sha).read_bytes() == image
    await asyncio.wait_for(station.uploader.drain(), 5)
    assert station.uploader.pending() == 0


@pytest.mark.asyncio
async def test_a_refused_proof_becomes_a_proof_rejected_event(
    station: Station, hub: Sessions, store: ProofConfig
) -> None:
    proofs.configure(ProofConfig(proofs_dir=store.proofs_dir, max_bytes=1000))
    image, sha = station.photo(1001)
    station.uploader.upload(image, sha256=sha, job_id=None, step="inspect_in_photo")
    await station.deliver(hub)
    await asyncio.wait_for(station.uploader.drain(), 5)
    rows = station.db.execute("SELECT payload FROM outbox WHERE kind = 'event'").fetchall()
    events = [json.loads(payload) for (payload,) in rows]
    assert [e["kind"] for e in events] == ["proof_rejected"]
    assert events[0]["message"] == f"proof {sha}: proof of 1001 bytes exceeds the limit of 1000"
    assert station.uploader.pending() == 0
    assert hashlib.sha256(image).hexdigest() == sha


@pytest.mark.asyncio
async def test_an_upload_a_full_disk_cut_short_is_finished_by_calling_it_again(
    station: Station, hub: Sessions, store: ProofConfig
) -> None:
    image, sha = station.photo(3 * PROOF_CHUNK_BYTES + 5)
    pages = station.db.execute("PRAGMA page_count").fetchone()[0]
    per_chunk = PROOF_CHUNK_BYTES * 4 // 3 // 4096 + 2  # base64 on 4 KiB pages, and a spare
    station.db.execute(f"PRAGMA max_page_count = {pages + per_chunk + 2}")  # one chunk fits
    with pytest.raises(OutboxFullError) as full:
        station.uploader.upload(image, sha256=sha, job_id=None, step="engraving_photo")
    assert full.value.disk_full
    assert station.outbox.depth()[1] == 1  # the first chunk is queued, the rest is not
    station.db.execute("PRAGMA max_page_count = 1073741823")  # space returns: agent.persist
    ids = station.uploader.upload(image, sha256=sha, job_id=None, step="engraving_photo")
    assert len(ids) == len(set(ids)) == chunk_count(len(image)) == 4  # each chunk queued once
    assert [seq for _epoch, seq in ids] == [1, 2, 3, 4]  # nothing queued twice in between
    assert await station.deliver(hub) == 4
    assert proof_path(store.proofs_dir, sha).read_bytes() == image
    await asyncio.wait_for(station.uploader.drain(), 5)
    assert station.uploader.pending() == 0
