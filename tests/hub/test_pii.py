"""Personal data: who sees engraving texts, read-backs and proof photos (every role, through the
real API on SQLite), the log redaction filter, and expiry that keeps the audit chain intact
(SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import io
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from benchfleet.broker import free_port
from benchfleet.cli import app as cli
from hub import pii
from hub.app import create_app
from hub.audit import verify_database
from hub.order_request import OrderRequest
from hub.orders import create_order
from hub.plan import build_steps
from hub.proofs import ProofConfig, proof_path
from hub.runtime import HubRuntime
from hub.settings import HubSettings
from hub.store.models import AuditEntry, Job, Order
from hub.store.proofs_tables import ProofRecord, VerificationRecord
from protocol.models import utcnow
from protocol.redaction import REDACTED, PersonalValues, RedactingFilter

TEXT = "Für Anna & Ben, 2026"
GIFT = "Happy anniversary, love Ben xx"
PHOTO = b"\x89PNG not really a photo: bytes with a hash, of order shop-a-1"
PHOTO_SHA = hashlib.sha256(PHOTO).hexdigest()
KEYS = [
    {"name": "shop-a", "role": "integrator", "key": "key-shop-a-0000"},
    {"name": "shop-b", "role": "integrator", "key": "key-shop-b-0000"},
    {"name": "bench-1", "role": "technician", "key": "key-bench-1-000", "station": "st-1"},
    {"name": "bench-2", "role": "technician", "key": "key-bench-2-000", "station": "st-2"},
    {"name": "floor", "role": "technician", "key": "key-floor-00000"},
    {"name": "eng", "role": "engineer", "key": "key-eng-0000000"},
    {"name": "qa", "role": "engineer", "key": "key-qa-00000000", "reviewer": True},
    {"name": "boss", "role": "admin", "key": "key-boss-000000"},
]


def request(external_id: str, *, gift: str | None = GIFT) -> OrderRequest:
    line: dict[str, Any] = {
        "line_id": "1",
        "piece": {
            "sku": "RING-14K-6",
            "serial": f"SN-{external_id}",
            "metal": "gold",
            "declared_value": {"amount": 1200},
        },
        "engraving": {"text": TEXT, "template": "ring_band"},
        "packaging": {"box": "ring_box", "gift_message": gift},
    }
    return OrderRequest.model_validate({"external_id": external_id, "lines": [line]})


async def stored_order(
    session: AsyncSession, external_id: str, integrator: str, *, age: timedelta = timedelta(0)
) -> Job:
    """An order whose one job st-1 finished ``age`` ago, with a verification and a proof."""
    at = utcnow() - age
    sha = hashlib.sha256(photo_of(external_id)).hexdigest()
    _, (job,), _ = await create_order(
        session, request=request(external_id), due_at=at, now=at, integrator=integrator
    )
    job.station_id, job.status, job.updated_at = "st-1", "done", at
    session.add(ProofRecord(sha256=sha, bytes=len(PHOTO), content_type="image/png",
                            station_id="st-1", job_id=job.id, step="engraving_photo",
                            received_at=at))  # fmt: skip
    session.add(VerificationRecord(job_id=job.id, step="engraving_photo", proof_sha256=sha,
                                   verdict="PASS", read_text=TEXT, diff=[{"op": "equal"}],
                                   reasons=[], engine="test", elapsed_ms=1.0, at=at))  # fmt: skip
    await session.commit()
    return job


def photo_of(external_id: str) -> bytes:
    return PHOTO.replace(b"shop-a-1", external_id.encode())


def write_photo(settings: HubSettings, external_id: str = "shop-a-1") -> Path:
    data = photo_of(external_id)
    sha = hashlib.sha256(data).hexdigest()
    path = proof_path(ProofConfig.from_settings(settings).proofs_dir, sha, "image/png")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest_asyncio.fixture
async def floor_api(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The hub app with the keys above, an order of shop-a finished at st-1, a dead letter."""
    settings = HubSettings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "hub",
        mqtt_url=f"mqtt://127.0.0.1:{free_port()}",
        api_keys=KEYS,  # type: ignore[arg-type]
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        runtime: HubRuntime = app.state.runtime
        async with runtime.sessions() as session:
            await stored_order(session, "shop-a-1", "shop-a")
        write_photo(settings)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            yield app, client


async def sees(client: httpx.AsyncClient, key: str) -> dict[str, Any]:
    """What the caller with ``key`` gets from each route that can show personal data."""
    headers = {"X-API-Key": key}
    order = await client.get("/orders/shop-a-1", headers=headers)
    dossier = await client.get("/orders/shop-a-1/dossier", headers=headers)
    seen: dict[str, Any] = {"order": order.status_code, "dossier": dossier.status_code}
    if dossier.status_code == 200:
        assert GIFT not in dossier.text  # never, for anyone
        seen["text"] = dossier.json()["order"]["lines"][0]["engraving"]["text"] == TEXT
        job_id = dossier.json()["jobs"][0]["job_id"]
        job = await client.get(f"/jobs/{job_id}", headers=headers)
        seen["job"] = job.status_code
        assert TEXT not in job.text
        assert GIFT not in job.text
        checks = await client.get(f"/jobs/{job_id}/verification", headers=headers)
        seen["verification"] = checks.status_code
        if checks.status_code == 200:
            (check,) = checks.json()
            assert check["verdict"] == "PASS"  # verdicts for every floor role
            seen["read_text"] = check["read_text"] == TEXT
    seen["photo"] = (await client.get(f"/proofs/{PHOTO_SHA}", headers=headers)).status_code
    return seen


SHOWN = {"order": 200, "dossier": 200, "text": True, "job": 200, "verification": 200,
         "read_text": True, "photo": 200}  # fmt: skip
HIDDEN = {**SHOWN, "text": False, "read_text": False, "photo": 403}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("key", "expected"),
    [
        pytest.param("key-shop-a-0000", {**SHOWN, "job": 403, "verification": 403,
                                         "read_text": None, "photo": 403}, id="own-integrator"),
        pytest.param("key-shop-b-0000", {"order": 404, "dossier": 404, "photo": 403},
                     id="other-integrator"),
        pytest.param("key-bench-1-000", SHOWN, id="technician-of-the-station"),
        pytest.param("key-bench-2-000", HIDDEN, id="technician-of-another-station"),
        pytest.param("key-floor-00000", SHOWN, id="floor-technician"),
        pytest.param("key-eng-0000000", HIDDEN, id="engineer"),
        pytest.param("key-qa-00000000", SHOWN, id="engineer-and-reviewer"),
        pytest.param("key-boss-000000", SHOWN, id="admin"),
    ],
)  # fmt: skip
async def test_each_role_sees_what_it_needs(
    floor_api: tuple[FastAPI, httpx.AsyncClient], key: str, expected: dict[str, Any]
) -> None:
    _, client = floor_api
    seen = await sees(client, key)
    assert {k: v for k, v in seen.items() if v is not None} == {
        k: v for k, v in expected.items() if v is not None
    }


@pytest.mark.asyncio
async def test_no_key_sees_nothing(floor_api: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = floor_api
    for path in ("/orders/shop-a-1", "/orders/shop-a-1/dossier", f"/proofs/{PHOTO_SHA}"):
        assert (await client.get(path)).status_code == 401


@pytest.mark.asyncio
async def test_dead_letter_previews_only_for_those_who_may_see_personal_data(
    floor_api: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = floor_api
    from hub.ingest import handle_message

    runtime: HubRuntime = app.state.runtime
    await handle_message(runtime.sessions, topic="bf/v1/st/st-1/up/event", payload=b'{"x":"Anna"')
    for key, preview in [("key-eng-0000000", REDACTED), ("key-bench-1-000", '{"x":"Anna"')]:
        (letter,) = (await client.get("/dead-letters", headers={"X-API-Key": key})).json()
        assert letter["payload_preview"] == preview
        assert letter["reason"]  # why is for everyone


def test_redaction_filter_removes_known_values_everywhere_in_a_record() -> None:
    values = PersonalValues()
    values.add(TEXT, "Anna", "Jo", None)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(values))
    logger = logging.getLogger("test_pii.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("order text %s for %r", TEXT, "Anna")
        logger.warning('payload {"text": "F\\u00fcr Anna & Ben, 2026"}')  # JSON-escaped form
        try:
            raise ValueError(f"input_value={TEXT!r}")
        except ValueError:
            logger.exception("validation failed")
        logger.warning("Jo stays: two letters are not registered")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    for value in (TEXT, "Anna", "F\\u00fcr"):
        assert value not in output
    assert output.count(REDACTED) >= 4
    assert "validation failed" in output
    assert "ValueError" in output  # the traceback stays, redacted
    assert "Jo stays" in output


@pytest.mark.asyncio
async def test_expiry_replaces_texts_and_photos_by_hashes_and_keeps_the_chain(
    sessions: async_sessionmaker[AsyncSession], migrated_url: str, tmp_path: Path
) -> None:
    settings = HubSettings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        database_url=migrated_url,
        pii_retention_days=30,
        proof_retention_days=60,
    )
    photo, kept_photo = write_photo(settings, "old-1"), write_photo(settings, "new-1")
    async with sessions() as session:
        old = await stored_order(session, "old-1", "shop-a", age=timedelta(days=31))
        recent = await stored_order(session, "new-1", "shop-a", age=timedelta(days=29))
    before = verify_database(migrated_url)
    assert before.ok

    report = await pii.expire_once(sessions, settings, now=utcnow())

    assert (report.orders, report.texts, report.verifications, report.proofs) == (1, 2, 1, 0)
    async with sessions() as session:
        order = await session.get_one(Order, old.order_id)
        line = order.request["lines"][0]
        assert line["engraving"]["text"] == pii.EXPIRED
        assert line["engraving"]["text_sha256"] == hashlib.sha256(TEXT.encode()).hexdigest()
        assert line["packaging"]["gift_message"] == pii.EXPIRED
        job = await session.get_one(Job, old.id)
        assert GIFT not in str(job.steps)
        assert pii.EXPIRED in str(job.steps)
        of_old = select(VerificationRecord).where(VerificationRecord.job_id == old.id)
        check = (await session.scalars(of_old)).one()
        assert (check.read_text, check.diff, check.verdict) == (pii.EXPIRED, [], "PASS")
        kept = await session.get_one(Order, recent.order_id)
        assert kept.request["lines"][0]["engraving"]["text"] == TEXT
        entry = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == pii.TEXTS_EXPIRED))
        ).one()
        hashes = {f["field"]: f["sha256"] for f in entry.data["fields"]}
        assert hashes["packaging.gift_message"] == hashlib.sha256(GIFT.encode()).hexdigest()
    after = verify_database(migrated_url)
    assert after.ok
    assert after.entries == before.entries + 1

    again = await pii.expire_once(sessions, settings, now=utcnow())
    assert (again.orders, again.proofs) == (0, 0)  # idempotent
    # A year on, the photo goes too; its row and hash stay, the chain still verifies.
    later = await pii.expire_once(sessions, settings, now=utcnow() + timedelta(days=400))
    assert (later.orders, later.proofs) == (1, 2)
    assert not photo.exists()
    assert not kept_photo.exists()
    async with sessions() as session:
        assert await session.get(ProofRecord, photo.stem) is not None
    assert verify_database(migrated_url).ok


@pytest.mark.asyncio
async def test_unfinished_work_keeps_its_texts(
    sessions: async_sessionmaker[AsyncSession], migrated_url: str, tmp_path: Path
) -> None:
    settings = HubSettings(_env_file=None, data_dir=tmp_path, pii_retention_days=1)  # type: ignore[call-arg]
    async with sessions() as session:
        job = await stored_order(session, "review-1", "shop-a", age=timedelta(days=5))
        (await session.get_one(Job, job.id)).status = "needs_review"  # a person decides first
        await session.commit()
    report = await pii.expire_once(sessions, settings, now=utcnow())
    assert report.orders == 0
    async with sessions() as session:
        assert await pii.remember_open_orders(session) == 1


def test_cli_expire_then_audit_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.store import upgrade_to_head

    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade_to_head(url)
    monkeypatch.setenv("BENCHFLEET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BENCHFLEET_PII_RETENTION_DAYS", "1")
    runner = CliRunner()
    expired = runner.invoke(cli, ["pii", "expire", "--database-url", url])
    assert expired.exit_code == 0, expired.output
    assert "expired: 0 order(s)" in expired.output
    verified = runner.invoke(cli, ["audit", "verify", "--database-url", url])
    assert verified.exit_code == 0, verified.output


def test_the_agent_and_the_hub_register_what_they_are_given() -> None:
    from agent.main import remember_personal_values
    from hub.dispatch import assignment
    from protocol.redaction import KNOWN

    order = Order(external_id="o-1", request=request("o-1").model_dump(mode="json"))
    job = Job(
        id=uuid.uuid4(), version=1, status="assigned", line_index=0, due_at=utcnow(), rush=False
    )
    job.steps = [
        s.model_dump(mode="json") for s in build_steps(request("o-1").lines[0], weigh=False)
    ]
    KNOWN.clear()
    remember_personal_values(assignment(job, order, utcnow()))  # as the agent receives it
    assert KNOWN.redact(f"{TEXT} / {GIFT}") == f"{REDACTED} / {REDACTED}"
    KNOWN.clear()
    pii.remember(order.request)  # as the hub takes the order in
    assert KNOWN.redact(f"{TEXT} / {GIFT}") == f"{REDACTED} / {REDACTED}"
    KNOWN.clear()
