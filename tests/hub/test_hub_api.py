"""The REST API through the ASGI app, with its lifespan (migrations, engine, MQTT link)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from benchfleet.broker import free_port
from hub.app import create_app
from hub.runtime import HubRuntime
from hub.settings import HubSettings
from hub.store import create_hub_engine, session_factory

LINE = {
    "line_id": "1",
    "piece": {
        "sku": "RING-14K-6",
        "serial": "SN-0001",
        "metal": "gold",
        "stones": [{"type": "diamond", "treatment": "none"}],
        "declared_value": {"amount": 1500, "currency": "EUR"},
    },
    "engraving": {"text": "Anna & Ben", "template": "ring_band", "font": "futural"},
}
ORDER = {"external_id": "shop-1001", "lines": [LINE]}
ADMIN = {"X-API-Key": "dev-admin-key"}
INTEGRATOR = {"X-API-Key": "dev-integrator-key"}


def hub_settings(tmp_path: Path, mqtt_url: str | None = None, **extra: object) -> HubSettings:
    """Settings isolated from the environment; by default a broker that is not there."""
    return HubSettings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "hub",
        mqtt_url=mqtt_url or f"mqtt://127.0.0.1:{free_port()}",
        **extra,  # type: ignore[arg-type]
    )


@pytest_asyncio.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    app = create_app(hub_settings(tmp_path))
    async with app.router.lifespan_context(app):
        yield app


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://hub", headers=ADMIN
    ) as client:
        yield client


@pytest.mark.asyncio
async def test_health_reports_database_and_broker(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "mqtt_connected": False, "database": "ok"}


@pytest.mark.asyncio
async def test_health_is_503_when_database_is_gone(app: FastAPI, client: httpx.AsyncClient) -> None:
    runtime: HubRuntime = app.state.runtime
    healthy = runtime.sessions
    dead = create_hub_engine("postgresql://nobody@127.0.0.1:1/none")  # nothing listens on :1
    runtime.sessions = session_factory(dead)
    try:
        response = await client.get("/health")
    finally:
        runtime.sessions = healthy
        await dead.dispose()
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


@pytest.mark.asyncio
async def test_order_is_idempotent_and_conflicts_are_409(client: httpx.AsyncClient) -> None:
    first = await client.post("/orders", json=ORDER, headers=INTEGRATOR)
    assert first.status_code == 201, first.text
    body = first.json()
    assert [j["status"] for j in body["jobs"]] == ["queued"]  # no station online
    again = await client.post("/orders", json=ORDER, headers=INTEGRATOR)
    assert again.status_code == 200
    assert again.json() == body
    changed_line = {**LINE, "engraving": {**LINE["engraving"], "text": "Anna & Bob"}}
    changed = {**ORDER, "lines": [changed_line]}
    conflict = await client.post("/orders", json=changed)
    assert conflict.status_code == 409
    assert "different content" in conflict.json()["detail"]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"lines": [{**LINE, "engraving": {"text": "", "template": "ring_band"}}]}, "text"),
        ({"lines": [{**LINE, "piece": {"sku": "RING"}}]}, "serial"),
        ({"lines": []}, "lines"),
        ({"external_id": "x" * 65}, "external_id"),
        ({"colour": "red"}, "colour"),
    ],
)
@pytest.mark.asyncio
async def test_invalid_order_is_422_naming_the_field(
    client: httpx.AsyncClient, patch: dict[str, object], field: str
) -> None:
    response = await client.post("/orders", json={**ORDER, **patch})
    assert response.status_code == 422
    assert any(field in error["loc"] for error in response.json()["detail"])


@pytest.mark.asyncio
async def test_job_detail_list_and_404(client: httpx.AsyncClient) -> None:
    created = (await client.post("/orders", json=ORDER)).json()
    job_id = created["jobs"][0]["job_id"]
    job = (await client.get(f"/jobs/{job_id}")).json()
    assert job["external_id"] == "shop-1001"
    assert (job["status"], job["version"], job["started"]) == ("queued", 1, False)
    assert [h["to_status"] for h in job["history"]] == ["queued"]
    assert "Anna" not in str(job)  # the engraving text is not exposed by /jobs
    listed = (await client.get("/jobs", params={"status": "queued"})).json()
    assert [j["id"] for j in listed] == [job_id]
    assert (await client.get("/jobs", params={"status": "done"})).json() == []
    missing = await client.get("/jobs/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404


@pytest.mark.asyncio
async def test_stations_dead_letters_metrics(app: FastAPI, client: httpx.AsyncClient) -> None:
    from hub.ingest import handle_message

    runtime: HubRuntime = app.state.runtime
    birth = b'{"v":1,"station_id":"st-a","bd_seq":3,"epoch":2,"agent_version":"1.0"}'
    await handle_message(runtime.sessions, topic="bf/v1/st/st-a/up/birth", payload=birth)
    await handle_message(runtime.sessions, topic="bf/v1/st/st-a/up/job", payload=b"\xff{oops")
    (station,) = (await client.get("/stations")).json()
    assert {k: station[k] for k in ("id", "online", "epoch", "bd_seq", "agent_version")} == {
        "id": "st-a",
        "online": True,
        "epoch": 2,
        "bd_seq": 3,
        "agent_version": "1.0",
    }
    (letter,) = (await client.get("/dead-letters", params={"limit": 5})).json()
    assert letter["topic"] == "bf/v1/st/st-a/up/job"
    assert letter["payload_preview"] == "\ufffd{oops"
    metrics = await client.get("/metrics")
    assert "benchfleet_hub_rejected_messages_total" in metrics.text
    assert "benchfleet_hub_stations_online 1.0" in metrics.text


STRONG_KEYS = [{"name": "shop", "role": "integrator", "key": "k" * 32}]


def test_production_refuses_default_secret_and_keys(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="secret_key"):
        hub_settings(tmp_path, environment="production", api_keys=STRONG_KEYS)
    with pytest.raises(ValueError, match="api_keys is empty"):
        hub_settings(tmp_path, environment="production", secret_key="s3cret-from-vault")
    dev_key = [{"name": "shop", "role": "integrator", "key": "dev-integrator-key"}]
    with pytest.raises(ValueError, match="development default"):
        hub_settings(
            tmp_path, environment="production", secret_key="s3cret-from-vault", api_keys=dev_key
        )
    with pytest.raises(ValueError, match="station_key_secret"):
        hub_settings(
            tmp_path, environment="production", secret_key="s3cret-from-vault", api_keys=STRONG_KEYS
        )
    ok = hub_settings(
        tmp_path,
        environment="production",
        secret_key="s3cret-from-vault",
        api_keys=STRONG_KEYS,
        station_key_secret="m" * 32,  # the master of station message keys (docs/security.md)
    )
    assert [k.name for k in ok.effective_api_keys] == ["shop"]
    assert ok.effective_database_url == f"sqlite:///{tmp_path / 'hub' / 'hub.db'}"
    with pytest.raises(ValueError, match="mqtt://"):
        hub_settings(tmp_path, mqtt_url="http://broker")


@pytest.mark.parametrize(
    ("method", "path", "headers", "expected"),
    [
        ("POST", "/orders", {}, 401),
        ("POST", "/orders", {"X-API-Key": "wrong"}, 401),
        ("POST", "/orders", {"X-API-Key": "dev-technician-key"}, 403),
        ("GET", "/jobs", INTEGRATOR, 403),
        ("GET", "/jobs", {"Authorization": "Bearer dev-technician-key"}, 200),
        ("GET", "/stations", {"X-API-Key": "dev-engineer-key"}, 200),
        ("GET", "/health", {}, 200),
    ],
)
@pytest.mark.asyncio
async def test_roles(
    app: FastAPI, method: str, path: str, headers: dict[str, str], expected: int
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as anonymous:
        response = await anonymous.request(method, path, json=ORDER, headers=headers)
    assert response.status_code == expected, response.text
