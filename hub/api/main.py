"""The API router: every resource router, mounted at the root."""

from fastapi import APIRouter

from hub.api.routes import (
    alarms,
    dead_letters,
    health,
    jobs,
    metrics,
    orders,
    promise,
    stations,
    telemetry,
    verification,
)

api_router = APIRouter()
for module in (health, stations, orders, promise, jobs, dead_letters, metrics, alarms, telemetry):
    api_router.include_router(module.router)
api_router.include_router(verification.router)
