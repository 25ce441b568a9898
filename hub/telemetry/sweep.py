"""Telemetry's part of the hub's sweeper round: gaps every round, rollups every round (a
bounded chunk), retention every ``telemetry_retention_every_s``."""

from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from hub.dispatch import Outgoing
from hub.settings import HubSettings
from hub.telemetry.gaps import sweep_gaps
from hub.telemetry.retention import expire, roll_up


class TelemetrySweeper:
    """Held by the hub's MQTT link; :meth:`run` adds to the sweeper's transaction."""

    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self._retention_due = time.monotonic() + settings.telemetry_retention_every_s

    async def run(self, session: AsyncSession, *, now: datetime) -> list[Outgoing]:
        """One round; returns the resync commands to publish after the commit."""
        out = await sweep_gaps(session, now=now, settings=self.settings)
        await roll_up(session, now=now, limit=self.settings.telemetry_rollup_batch)
        if time.monotonic() >= self._retention_due:
            self._retention_due = time.monotonic() + self.settings.telemetry_retention_every_s
            await expire(session, now=now, settings=self.settings)
        return out
