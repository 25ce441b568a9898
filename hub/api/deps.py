"""FastAPI dependencies as ``Annotated`` aliases (the FastAPI full-stack template's style)."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from hub.mqtt import HubLink
from hub.runtime import HubRuntime
from hub.settings import HubSettings


def get_runtime(request: Request) -> HubRuntime:
    """The running hub, put on ``app.state`` by the lifespan."""
    runtime: HubRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[HubRuntime, Depends(get_runtime)]


def get_settings(runtime: RuntimeDep) -> HubSettings:
    return runtime.settings


def get_link(runtime: RuntimeDep) -> HubLink:
    return runtime.link


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """One session per request; routes that write commit explicitly."""
    async with runtime.sessions() as session:
        yield session


SettingsDep = Annotated[HubSettings, Depends(get_settings)]
LinkDep = Annotated[HubLink, Depends(get_link)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
