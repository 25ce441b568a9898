"""The engineer dashboards: HTML shells, live data over server-sent events, alarm actions.

Pages are small static shells; ``static/dashboard.js`` renders what the streams push. A
stream sends a full snapshot, then every ``dashboard_refresh_s`` what changed (station charts:
only the points stored since the last push). A stream ends after ``STREAM_MAX_S`` and the
browser's EventSource reconnects by itself: a stopping hub is never held up by an open page.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse

from hub.api.deps import RuntimeDep, SettingsDep
from hub.api.routes.alarms import act_on_alarm
from hub.dashboard import queries
from hub.dashboard.auth import (
    COOKIE,
    SESSION_S,
    PageViewer,
    Viewer,
    Writer,
    principal_for_key,
    session_cookie,
)
from hub.dashboard.pages import login_page, shell
from hub.runtime import HubRuntime
from protocol.models import utcnow

STREAM_MAX_S = 20.0
STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
router = APIRouter(prefix="/dashboard", include_in_schema=False)


# ---- sign-in ---------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
async def login_form() -> HTMLResponse:
    return HTMLResponse(login_page())


@router.post("/login")
async def login(settings: SettingsDep, api_key: Annotated[str, Form()]) -> Response:
    principal = principal_for_key(settings, api_key.strip())
    if principal is None:
        page = login_page("That key is unknown or not an engineer's or admin's.")
        return HTMLResponse(page, status_code=status.HTTP_401_UNAUTHORIZED)
    response = RedirectResponse("/dashboard", status_code=status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        COOKIE,
        session_cookie(settings, principal),
        max_age=SESSION_S,
        httponly=True,
        samesite="strict",
        secure=settings.environment != "development",
        path="/dashboard",
    )
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse("/dashboard/login", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(COOKIE, path="/dashboard")
    return response


# ---- pages -----------------------------------------------------------------------------------


def _page(viewer: PageViewer, page: str, title: str, **data: str) -> Response:
    if viewer is None:
        return RedirectResponse("/dashboard/login", status_code=status.HTTP_303_SEE_OTHER)
    return HTMLResponse(shell(page=page, title=title, user=viewer.actor, data=data))


@router.get("", response_class=HTMLResponse)
async def overview_page(viewer: PageViewer) -> Response:
    return _page(viewer, "overview", "Fleet overview")


@router.get("/alarms", response_class=HTMLResponse)
async def alarms_page(viewer: PageViewer) -> Response:
    return _page(viewer, "alarms", "Alarms")


@router.get("/stations/{station_id}", response_class=HTMLResponse)
async def station_page(station_id: str, viewer: PageViewer) -> Response:
    return _page(viewer, "station", f"Station {station_id}", station=station_id)


@router.get("/static/{name}")
async def static_file(name: str) -> Response:
    if name not in STATIC:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
    body = resources.files("hub.dashboard").joinpath("static", name).read_bytes()
    return Response(body, media_type=STATIC[name], headers={"Cache-Control": "no-cache"})


# ---- live data -------------------------------------------------------------------------------


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _stream(
    request: Request,
    runtime: HubRuntime,
    snapshot: Callable[[], Awaitable[tuple[str, Any] | None]],
) -> AsyncIterator[bytes]:
    yield b"retry: 1000\n\n"
    started, last = time.monotonic(), None
    while time.monotonic() - started < STREAM_MAX_S and not await request.is_disconnected():
        item = await snapshot()
        if item is not None and item != last:
            yield _sse(*item)
            last = item
        await asyncio.sleep(runtime.settings.dashboard_refresh_s)


def _sse_response(body: AsyncIterator[bytes]) -> StreamingResponse:
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


@router.get("/stream/overview")
async def overview_stream(request: Request, runtime: RuntimeDep, _: Viewer) -> Response:
    rate = _PointRate()

    async def snapshot() -> tuple[str, Any]:
        async with runtime.sessions() as session:
            data = await queries.overview(session, now=utcnow())
        data["points_per_s"] = rate.update(data.pop("points_cursor"))
        return "overview", data

    return _sse_response(_stream(request, runtime, snapshot))


@router.get("/stream/alarms")
async def alarms_stream(request: Request, runtime: RuntimeDep, _: Viewer) -> Response:
    async def snapshot() -> tuple[str, Any]:
        async with runtime.sessions() as session:
            return "alarms", await queries.alarm_list(session)

    return _sse_response(_stream(request, runtime, snapshot))


@router.get("/stream/stations/{station_id}")
async def station_stream(
    request: Request, station_id: str, runtime: RuntimeDep, _: Viewer
) -> Response:
    cursor = {"id": 0}
    window = timedelta(seconds=runtime.settings.dashboard_window_s)

    async def snapshot() -> tuple[str, Any] | None:
        reset = cursor["id"] == 0  # a (re)connected page starts its charts afresh
        async with runtime.sessions() as session:
            station = await queries.station_detail(session, station_id)
            if station is None:
                return "missing", {"id": station_id}
            series, cursor["id"] = await queries.station_points(
                session, station_id, after_id=cursor["id"], since=utcnow() - window
            )
            station["alarms"] = (await queries.alarm_list(session, station_id=station_id))["open"]
        station["series"] = series  # new points only (the page appends them)
        station["window_s"], station["reset"] = window.total_seconds(), reset
        return "station", station

    return _sse_response(_stream(request, runtime, snapshot))


class _PointRate:
    """Points stored per second between two looks at the newest telemetry row id."""

    def __init__(self) -> None:
        self._last: tuple[int, float] | None = None

    def update(self, cursor: int) -> float | None:
        now, last = time.monotonic(), self._last
        self._last = (cursor, now)
        if last is None or now <= last[1]:
            return None
        return round((cursor - last[0]) / (now - last[1]), 1)


# ---- actions ---------------------------------------------------------------------------------


@router.post("/alarms/{alarm_id}/{action}")
async def alarm_action(
    alarm_id: uuid.UUID,
    action: Literal["acknowledge", "clear"],
    runtime: RuntimeDep,
    principal: Writer,
) -> dict[str, str]:
    alarm = await act_on_alarm(runtime, alarm_id, action, principal.actor)
    return {"id": str(alarm.id), "state": alarm.state}
