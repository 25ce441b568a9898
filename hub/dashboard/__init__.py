"""Engineer dashboards served by the hub: fleet overview, station detail with live charts,
alarms with acknowledge (docs/dashboards.md). Plain FastAPI + server-sent events; see the docs
for why not NiceGUI."""

from hub.dashboard.routes import router

__all__ = ["router"]
