"""Hub store fixtures on top of tests/conftest.py's `database_url` (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from benchfleet.broker import free_port
from hub.app import create_app
from hub.order_request import OrderRequest
from hub.orders import create_order
from hub.settings import HubSettings
from hub.store import create_hub_engine, session_factory, upgrade_to_head
from hub.store.models import Job, Station
from protocol.models import utcnow


@pytest.fixture
def migrated_url(database_url: str) -> str:
    """A database URL at the newest schema."""
    upgrade_to_head(database_url)
    return database_url


@pytest_asyncio.fixture
async def sessions(migrated_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """An async session factory on a migrated database."""
    engine = create_hub_engine(migrated_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest_asyncio.fixture
async def pg_sessions(
    pg_database: Callable[[], str],
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """An async session factory on a fresh, migrated PostgreSQL database."""
    url = pg_database()
    upgrade_to_head(url)
    engine = create_hub_engine(url)
    yield session_factory(engine)
    await engine.dispose()


LASER = {"name": "laser", "family": "laser", "model": "sim", "backend": "sim"}
CAMERA = {"name": "camera", "family": "camera", "model": "sim", "backend": "sim"}


def order_request(external_id: str = "o-1", text: str | None = "Anna", **line: Any) -> OrderRequest:
    """A one-line order; ``line`` overrides fields of the line (piece, cleaning, ...)."""
    body: dict[str, Any] = {
        "line_id": "1",
        "piece": {
            "sku": "RING-14K-6",
            "serial": f"SN-{external_id}",
            "metal": "gold",
            "stones": [{"type": "diamond", "treatment": "none"}],
            "declared_value": {"amount": 1200, "currency": "EUR"},
        },
    }
    if text is not None:
        body["engraving"] = {"text": text, "template": "ring_band", "font": "futural"}
    body.update(line)
    rush = bool(body.pop("rush", False))
    return OrderRequest.model_validate({"external_id": external_id, "lines": [body], "rush": rush})


async def new_order(
    session: AsyncSession,
    external_id: str = "o-1",
    text: str | None = "Anna",
    *,
    due_in: timedelta = timedelta(days=1),
    now: datetime | None = None,
    **line: Any,
) -> Job:
    """Store a one-line order (no intake checks) and return its job."""
    now = now or utcnow()
    request = order_request(external_id, text, **line)
    _, jobs, _ = await create_order(session, request=request, due_at=now + due_in, now=now)
    return jobs[0]


def station_row(
    station_id: str,
    *,
    online: bool = True,
    offline_since: datetime | None = None,
    devices: list[dict[str, Any]] | None = None,
    alarm: str | None = None,
) -> Station:
    return Station(
        id=station_id,
        online=online,
        epoch=1,
        bd_seq=0,
        agent_version="test",
        devices=[LASER, CAMERA] if devices is None else devices,
        offline_since=offline_since,
        alarm=alarm,
    )


@dataclass(frozen=True)
class HubHelpers:
    """Helpers for hub tests (test modules cannot import conftest in importlib mode)."""

    order_request: Callable[..., OrderRequest] = order_request
    new_order: Callable[..., Awaitable[Job]] = new_order
    station: Callable[..., Station] = station_row


@pytest.fixture
def h() -> HubHelpers:
    return HubHelpers()


@pytest_asyncio.fixture
async def hub_app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    """The hub app with its lifespan on SQLite; its broker is not there (assignment happens
    through the functions the tests call)."""
    settings = HubSettings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "hub",
        mqtt_url=f"mqtt://127.0.0.1:{free_port()}",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest_asyncio.fixture
async def api(hub_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``hub_app`` with the development admin key."""
    transport = httpx.ASGITransport(app=hub_app)
    headers = {"X-API-Key": "dev-admin-key"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://hub", headers=headers
    ) as client:
        yield client
