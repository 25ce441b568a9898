"""What one running hub holds: settings, database, MQTT link. Shared by the app and the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hub.mqtt import HubLink
from hub.settings import HubSettings


@dataclass
class HubRuntime:
    """Created by the app's lifespan, read by the API dependencies."""

    settings: HubSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    link: HubLink
    started_at: datetime
