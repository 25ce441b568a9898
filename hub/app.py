"""The hub process: FastAPI app with a lifespan that owns the database and the MQTT link."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from hub.api.main import api_router
from hub.mqtt import HubLink
from hub.runtime import HubRuntime
from hub.settings import HubSettings
from hub.stations import mark_all_offline, refresh_online_gauge
from hub.store import create_hub_engine, session_factory, upgrade_to_head
from protocol.models import utcnow

log = logging.getLogger(__name__)


def create_app(settings: HubSettings) -> FastAPI:
    """The hub as an ASGI app; the MQTT link runs while the app's lifespan does."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await _start(settings)
        app.state.runtime = runtime
        try:
            yield
        finally:
            await runtime.link.stop()
            await runtime.engine.dispose()
            log.info("hub %s stopped", settings.hub_id)

    app = FastAPI(
        title="benchfleet hub",
        summary="Orders, jobs and stations of a jewelry VAS floor.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.include_router(api_router)
    return app


async def _start(settings: HubSettings) -> HubRuntime:
    url = settings.effective_database_url
    await asyncio.to_thread(upgrade_to_head, url)
    engine = create_hub_engine(url)
    sessions = session_factory(engine)
    started_at = utcnow()
    async with sessions.begin() as session:
        # Nobody is online until it re-announces; startup_grace_s keeps their jobs meanwhile.
        await mark_all_offline(session, now=started_at)
        await refresh_online_gauge(session)
    link = HubLink(settings=settings, sessions=sessions, started_at=started_at)
    link.start()
    log.info("hub %s started (broker %s)", settings.hub_id, settings.broker)
    return HubRuntime(settings, engine, sessions, link, started_at)


def run_hub(settings: HubSettings) -> None:
    """Serve the hub until SIGINT/SIGTERM; uvicorn turns both into a graceful shutdown that
    runs the lifespan's exit (retained offline state, clean MQTT disconnect)."""
    config = uvicorn.Config(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # keep the CLI's logging setup
        log_level=logging.getLogger().getEffectiveLevel(),
        lifespan="on",
    )
    # uvicorn re-raises the signal that stopped it once shutdown is complete; let that land on
    # a handler that does nothing, so a graceful stop exits 0 (systemd, the demo, tests).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    asyncio.run(uvicorn.Server(config).serve())
