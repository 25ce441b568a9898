"""The verification API on a running hub app (SQLite, its real process pool): POST /verify,
GET /jobs/{id}/verification, GET /proofs/{sha256}, and who may call them."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from hub.ingest import handle_message
from hub.runtime import HubRuntime
from protocol import encode, topics
from protocol.models import ProofChunk

PHOTO = Path(__file__).parents[1] / "fixtures" / "proofs" / "anna_ben_2026_ring_band.png"
INTEGRATOR = {"X-API-Key": "dev-integrator-key"}


async def verify(
    api: httpx.AsyncClient, text: str, *, image: bytes | None = None, key: str | None = None
) -> httpx.Response:
    files = {"image": ("photo.png", image or PHOTO.read_bytes(), "image/png")}
    data = {"text": text, "font": "futural", "template": "ring_band"}
    headers = {"X-API-Key": key} if key else None
    return await api.post("/verify", files=files, data=data, headers=headers)


@pytest.mark.asyncio
async def test_verify_reads_a_photo_in_the_worker_pool(api: httpx.AsyncClient) -> None:
    passed = await verify(api, "Anna & Ben 2026", key="dev-technician-key")
    assert passed.status_code == 200, passed.text
    assert (passed.json()["verdict"], passed.json()["read_text"]) == ("PASS", "Anna & Ben 2026")
    failed = await verify(api, "anna & Ben 2026")
    assert failed.json()["verdict"] == "FAIL"  # case matters
    first = {"op": "substitute", "position": 0, "expected": "a", "read": "A"}
    assert failed.json()["diff"][0] == first


@pytest.mark.asyncio
async def test_verify_refuses_what_it_cannot_read_and_who_may_not_ask(
    api: httpx.AsyncClient,
) -> None:
    garbage = await verify(api, "Anna", image=b"not an image")
    assert garbage.status_code == 422
    assert "image" in garbage.json()["detail"]
    empty_text = await verify(api, "")
    assert empty_text.status_code == 422
    assert (await verify(api, "Anna", key="dev-integrator-key")).status_code == 403


@pytest.mark.asyncio
async def test_proofs_and_verifications_of_a_job(api: httpx.AsyncClient, hub_app: FastAPI) -> None:
    runtime: HubRuntime = hub_app.state.runtime
    image = PHOTO.read_bytes()
    sha = hashlib.sha256(image).hexdigest()
    chunk = ProofChunk(
        station_id="st-a",
        epoch=1,
        seq=1,
        proof_sha256=sha,
        index=0,
        count=1,
        total_bytes=len(image),
        data=base64.b64encode(image).decode(),
    )
    topic = topics.up("st-a", topics.Up.PROOF)
    await handle_message(runtime.sessions, topic=topic, payload=encode(chunk))
    got = await api.get(f"/proofs/{sha}")
    assert got.status_code == 200
    assert (got.content, got.headers["content-type"]) == (image, "image/png")
    assert (await api.get(f"/proofs/{sha}", headers=INTEGRATOR)).status_code == 403
    assert (await api.get(f"/proofs/{'0' * 64}")).status_code == 404
    assert (await api.get("/proofs/not-a-hash")).status_code == 422
    unknown = await api.get("/jobs/00000000-0000-0000-0000-000000000000/verification")
    assert unknown.status_code == 404
