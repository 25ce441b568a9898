"""Irreversible work is never retried; people decide; every step is in a hash-chained audit
log whose tampering is detected; the dossier shows it all."""

from __future__ import annotations

import sqlite3
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from benchfleet.cli import app as cli
from hub import dispatch
from hub.audit import verify_database
from hub.ingest import handle_message
from hub.runtime import HubRuntime
from protocol import topics
from protocol.codec import encode
from protocol.models import (
    Ack,
    Birth,
    DeviceInfo,
    Evidence,
    JobAssignment,
    JobUpdate,
    StationJobStatus,
    utcnow,
)

S = StationJobStatus
SHA = "cd" * 32
TEXT = "Anna <3 Ben"
INTEGRATOR = {"X-API-Key": "dev-integrator-key"}
LINE = {
    "line_id": "1",
    "piece": {
        "sku": "RING-14K-6",
        "serial": "SN-77",
        "metal": "gold",
        "declared_value": {"amount": 4200},
    },
    "engraving": {"text": TEXT, "template": "ring_band"},
}
_seq = count(1)


class Station:
    """Speaks the protocol to the hub's ingest directly (no broker)."""

    def __init__(self, runtime: HubRuntime, station_id: str = "st-a") -> None:
        self.runtime, self.id = runtime, station_id
        self.version: dict[Any, int] = {}

    async def birth(self) -> list[JobAssignment]:
        devices = [
            DeviceInfo(name="laser", family="laser"),
            DeviceInfo(name="cam", family="camera"),
        ]
        birth = Birth(station_id=self.id, bd_seq=1, epoch=1, agent_version="t", devices=devices)
        out = await handle_message(
            self.runtime.sessions, topic=topics.up(self.id, topics.Up.BIRTH), payload=encode(birth)
        )
        found = [o.message for o in out if isinstance(o.message, JobAssignment)]
        for assignment in found:
            self.version[assignment.job_id] = assignment.version
        return found

    async def send(self, job_id: Any, status: StationJobStatus, **fields: Any) -> Ack:
        update = JobUpdate.model_validate(
            {
                "station_id": self.id,
                "epoch": 1,
                "seq": next(_seq),
                "job_id": job_id,
                "expected_version": self.version[job_id],
                "status": status,
                **fields,
            }
        )
        out = await handle_message(
            self.runtime.sessions, topic=topics.up(self.id, topics.Up.JOB), payload=encode(update)
        )
        (ack,) = [o.message for o in out if isinstance(o.message, Ack)]
        assert isinstance(ack, Ack)
        if ack.job is not None:
            self.version[job_id] = ack.job.version
        return ack

    async def engrave_and_fail(self, job_id: Any) -> None:
        for status, fields in [
            (S.ACKNOWLEDGED, {}),
            (S.RUNNING, {}),
            (
                S.RUNNING,
                {
                    "step": "inspect_in_photo",
                    "step_phase": "done",
                    "evidence": [Evidence(step="inspect_in_photo", kind="photo", sha256=SHA)],
                },
            ),
            (S.RUNNING, {"step": "engrave", "step_phase": "start"}),
            (S.FAILED, {"detail": "laser alarm: door opened"}),
        ]:
            ack = await self.send(job_id, status, **fields)
            assert ack.outcome == "accepted", ack.reason


async def failed_engraving(api: httpx.AsyncClient, runtime: HubRuntime) -> dict[str, Any]:
    order = {"external_id": "shop-9", "lines": [LINE]}  # the integrator's own (it reads it)
    created = (await api.post("/orders", json=order, headers=INTEGRATOR)).json()
    station = Station(runtime)
    (assignment,) = await station.birth()
    await station.engrave_and_fail(assignment.job_id)
    job = (await api.get(f"/jobs/{assignment.job_id}")).json()
    assert (job["status"], job["started"]) == ("needs_review", True)
    return {"order": created, "job": job, "station": station}


def runtime_of(app: FastAPI) -> HubRuntime:
    runtime: HubRuntime = app.state.runtime
    return runtime


@pytest.mark.asyncio
async def test_started_engraving_is_never_retried(hub_app: FastAPI, api: httpx.AsyncClient) -> None:
    runtime = runtime_of(hub_app)
    state = await failed_engraving(api, runtime)
    job = state["job"]
    for _ in range(3):  # the sweeper runs; nothing moves the job or makes a new one
        async with runtime.sessions.begin() as session:
            await dispatch.sweep(
                session, now=utcnow(), settings=runtime.settings, hub_started_at=runtime.started_at
            )
    again = (await api.get(f"/jobs/{job['id']}")).json()
    assert (again["status"], again["version"]) == ("needs_review", job["version"])
    assert len((await api.get("/jobs")).json()) == 1
    requeue = {"decision": "requeue", "expected_version": job["version"], "reason": "retry?"}
    refused = await api.post(f"/jobs/{job['id']}/decisions", json=requeue)
    assert refused.status_code == 409
    assert "never retried" in refused.json()["detail"]
    assert refused.json()["state"]["status"] == "needs_review"


@pytest.mark.asyncio
async def test_reengrave_needs_an_approver_and_is_idempotent(
    hub_app: FastAPI, api: httpx.AsyncClient
) -> None:
    job = (await failed_engraving(api, runtime_of(hub_app)))["job"]
    url = f"/jobs/{job['id']}/decisions"
    body = {"decision": "reengrave", "expected_version": job["version"], "reason": "re-do"}
    technician = {"X-API-Key": "dev-technician-key"}
    assert (await api.post(url, json=body, headers=technician)).status_code == 403
    no_approval = await api.post(url, json=body, headers={"X-API-Key": "dev-engineer-key"})
    assert no_approval.status_code == 409
    assert "approval" in no_approval.json()["detail"]
    approved = {**body, "approval": "CHG-118", "request_id": "req-1"}
    first = await api.post(url, json=approved, headers={"X-API-Key": "dev-engineer-key"})
    assert first.status_code == 200, first.text
    again = await api.post(url, json=approved, headers={"X-API-Key": "dev-engineer-key"})
    assert again.json() == {**first.json(), "replayed": True}
    assert first.json()["status"] == "cancelled"
    follow = (await api.get(f"/jobs/{first.json()['follow_up_job_id']}")).json()
    assert follow["origin"] == f"reengrave:{job['id']}"
    assert follow["approved_by"] == "engineer:dev-engineer (CHG-118)"
    assert [s["name"] for s in follow["steps"]][1] == "engrave"
    stale = await api.post(url, json={**approved, "request_id": "req-2"})
    assert stale.status_code == 409
    assert stale.json()["state"]["version"] == first.json()["version"]


@pytest.mark.parametrize(
    ("decision", "steps"),
    [("scrap", None), ("rework", ["rework", "engraving_photo", "inspect_out_photo"])],
)
@pytest.mark.asyncio
async def test_scrap_and_rework(
    hub_app: FastAPI, api: httpx.AsyncClient, decision: str, steps: list[str] | None
) -> None:
    job = (await failed_engraving(api, runtime_of(hub_app)))["job"]
    body = {"decision": decision, "expected_version": job["version"], "reason": "burn mark"}
    answer = await api.post(
        f"/jobs/{job['id']}/decisions", json=body, headers={"X-API-Key": "dev-technician-key"}
    )
    assert answer.status_code == 200, answer.text
    follow_id = answer.json()["follow_up_job_id"]
    if steps is None:
        assert follow_id is None
        return
    follow = (await api.get(f"/jobs/{follow_id}")).json()
    assert [s["name"] for s in follow["steps"]] == steps
    assert follow["steps"][0]["signoff_required"] is True


@pytest.mark.asyncio
async def test_cancel_unstarted_job_sends_a_cancel_command(api: httpx.AsyncClient) -> None:
    created = (await api.post("/orders", json={"external_id": "shop-c", "lines": [LINE]})).json()
    ref = created["jobs"][0]
    body = {"decision": "cancel", "expected_version": ref["version"], "reason": "customer"}
    technician = await api.post(
        f"/jobs/{ref['job_id']}/decisions", json=body, headers={"X-API-Key": "dev-technician-key"}
    )
    assert technician.status_code == 403
    answer = await api.post(f"/jobs/{ref['job_id']}/decisions", json=body)
    assert (answer.status_code, answer.json()["status"]) == (200, "cancelled")


@pytest.mark.asyncio
async def test_dossier_json_and_html(hub_app: FastAPI, api: httpx.AsyncClient) -> None:
    state = await failed_engraving(api, runtime_of(hub_app))
    dossier = (await api.get("/orders/shop-9/dossier")).json()
    assert dossier["audit_intact"] is True
    (job,) = dossier["jobs"]
    assert job["status"] == "needs_review"
    assert [(s["name"], s["state"]) for s in job["steps"][:2]] == [
        ("inspect_in_photo", "done"),
        ("engrave", "started"),
    ]
    assert job["steps"][0]["evidence"][0]["sha256"] == SHA
    actions = [(a["action"], a["data"].get("to")) for a in dossier["audit"]]
    assert actions[:3] == [
        ("order_received", None),
        ("job_created", "queued"),
        ("transition", "assigned"),
    ]
    assert actions[-1] == ("transition", "needs_review")
    assert all(a["actor"] for a in dossier["audit"])
    html = await api.get("/orders/shop-9/dossier", headers={"accept": "text/html"})
    assert html.headers["content-type"].startswith("text/html")
    assert "Chain of custody: order shop-9" in html.text
    assert SHA in html.text
    assert "Anna &lt;3 Ben" in html.text or "Anna <3 Ben" not in html.text  # escaped if present
    integrator = await api.get(
        f"/orders/{state['order']['order_id']}/dossier?format=html",
        headers={"X-API-Key": "dev-integrator-key"},
    )
    assert integrator.status_code == 200


def _db(hub_app: FastAPI) -> Path:
    return Path(runtime_of(hub_app).settings.data_dir) / "hub.db"


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        ("UPDATE audit_log SET actor = 'station:st-z' WHERE seq = 5", "entry 5: content altered"),
        ("UPDATE audit_log SET data = replace(data, 'laser alarm', 'all fine')", "content altered"),
        ("DELETE FROM audit_log WHERE seq = 4", "entry 4 is missing"),
        ("DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)", "entries removed"),
        ("UPDATE audit_log SET hash = prev_hash WHERE seq = 3", "entry 3"),
    ],
)
@pytest.mark.asyncio
async def test_tampering_is_detected(
    hub_app: FastAPI, api: httpx.AsyncClient, tamper: str, problem: str
) -> None:
    await failed_engraving(api, runtime_of(hub_app))
    url = f"sqlite:///{_db(hub_app)}"
    intact = verify_database(url)
    assert intact.ok
    assert intact.entries >= 8
    result = CliRunner().invoke(cli, ["audit", "verify", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert "audit chain intact" in result.output
    with sqlite3.connect(_db(hub_app)) as conn:
        conn.execute(tamper)
    broken = verify_database(url)
    assert not broken.ok
    assert problem in (broken.problem or "")
    result = CliRunner().invoke(cli, ["audit", "verify", "--database-url", url])
    assert result.exit_code == 1
    assert "BROKEN" in result.output
    dossier = (await api.get("/orders/shop-9/dossier")).json()
    if "altered" in problem:
        assert dossier["audit_intact"] is False
