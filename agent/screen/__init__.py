"""The station screen: a touch-friendly local web UI served by the agent itself
(docs/station-screen.md). Plain FastAPI + server-sent events + a small vanilla script, like the
hub's dashboards (docs/dashboards.md); it renders the :class:`~agent.workbench.Workbench`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.context import AgentContext
    from agent.screen.server import StationScreen
    from agent.workbench import Workbench


def create(ctx: AgentContext, workbench: Workbench) -> StationScreen | None:
    """The screen component the station config asks for (``screen_port``), or None (off)."""
    config = ctx.config
    if config.screen_port is None:
        return None
    from agent.screen.server import StationScreen

    return StationScreen(
        workbench,
        host=config.screen_host,
        port=config.screen_port,
        data_dir=config.data_dir,
        idle_s=config.screen_idle_signout_s,
    )
