"""The hub process: FastAPI app with a lifespan that owns the database and the MQTT link."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from hub import alarms
from hub.api.main import api_router
from hub.dashboard import router as dashboard_router
from hub.mqtt import HubLink
from hub.runtime import HubRuntime
from hub.settings import HubSettings
from hub.stations import mark_all_offline, refresh_online_gauge
from hub.store import create_hub_engine, session_factory, upgrade_to_head
from hub.telemetry.influx import build_influx_exporter
from protocol.models import utcnow

log = logging.getLogger(__name__)


def create_app(settings: HubSettings) -> FastAPI:
    """The hub as an ASGI app; the MQTT link runs while the app's lifespan does."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await _start(settings)
        app.state.runtime = runtime
        # InfluxDB export (off unless influx_url is set); writes go through the link's lock.
        influx = build_influx_exporter(settings, runtime.sessions, runtime.link.serialised)
        if influx is not None:
            influx.start()
        try:
            yield
        finally:
            if influx is not None:
                await influx.stop()
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
    if settings.dashboards_enabled:
        app.include_router(dashboard_router)  # plain routes: no global state, any number of apps
    return app


async def _start(settings: HubSettings) -> HubRuntime:
    alarms.use_rules(settings.alarm_rules_path)  # a bad rules file stops the start, named
    url = settings.effective_database_url
    await asyncio.to_thread(upgrade_to_head, url)
    engine = create_hub_engine(url)
    sessions = session_factory(engine)
    started_at = utcnow()
    async with sessions.begin() as session:
        # Nobody is online until it re-announces; startup_grace_s keeps their jobs meanwhile.
        await mark_all_offline(session, now=started_at)
        await refresh_online_gauge(session)
        await alarms.refresh_open_gauge(session)
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
        # Open dashboard streams end by themselves within seconds; never wait longer.
        timeout_graceful_shutdown=5,
    )
    # uvicorn re-raises the signal that stopped it once shutdown is complete; let that land on
    # a handler that does nothing, so a graceful stop exits 0 (systemd, the demo, tests).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    asyncio.run(uvicorn.Server(config).serve())
