"""Routes of the station screen: the page, its event stream, the technician's actions.

The page is one static shell; ``static/screen.js`` renders what ``/stream`` pushes (the
Workbench's StationView as JSON, put in the DOM as text, never as HTML). Every action needs the
signed-in technician's session cookie and the ``X-Screen: 1`` header, and is one Workbench call;
a refusal comes back as 409 with the Workbench's own message for the page to show. Nothing
here logs an engraving text: job ids and reasons only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import Depends, FastAPI, Header, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from agent.screen.auth import COOKIE, Sessions
from agent.screen.pages import shell
from agent.workbench import ActionRefused, AuthError, NotFound, Workbench

STREAM_MAX_S = 20.0  # the browser's EventSource reconnects by itself (retry: 1000)
STATIC = {"screen.js": "text/javascript", "screen.css": "text/css"}
SHA256 = re.compile(r"[0-9a-f]{64}")
JobAction = Literal["acknowledge", "ready", "frame", "confirm-fire", "sign-off", "block", "scrap"]
# What a browser that is not signed in may see: the station's state, never the jobs' texts.
PUBLIC_FIELDS = {"station_id", "hub_online", "operator", "devices", "alarms", "messages", "at"}


class SignIn(BaseModel):
    badge: Annotated[str, Field(min_length=1, max_length=64)]
    pin: Annotated[str, Field(min_length=1, max_length=32)]


class JobActionBody(BaseModel):
    step: Annotated[str | None, Field(max_length=64)] = None
    reason: Annotated[str | None, Field(max_length=500)] = None


class Report(BaseModel):
    job_id: UUID | None = None
    text: Annotated[str, Field(min_length=1, max_length=500)]


class Maintenance(BaseModel):
    device: Annotated[str, Field(min_length=1, max_length=64)]
    text: Annotated[str, Field(min_length=1, max_length=500)]


class _Guard:
    """Who is asking: the technician this browser signed in (and still signed in)."""

    def __init__(self, workbench: Workbench, sessions: Sessions) -> None:
        self.workbench, self.sessions = workbench, sessions

    def badge(self, request: Request) -> str | None:
        badge = self.sessions.badge_of(request.cookies.get(COOKIE))
        current = self.workbench.view().technician
        return badge if current is not None and badge == current.badge else None

    # Dependencies are coroutines: FastAPI runs plain functions on a thread, and the view
    # reads the agent's SQLite, which belongs to the loop's thread.
    async def viewer(self, request: Request) -> str:
        badge = self.badge(request)
        if badge is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in first")
        return badge

    async def actor(
        self, request: Request, x_screen: Annotated[str | None, Header()] = None
    ) -> str:
        """The signed-in technician acting now (resets the idle clock); 401/403 otherwise."""
        _require_screen_header(x_screen)
        badge = await self.viewer(request)
        self.sessions.touch()
        return badge


def _require_screen_header(value: str | None) -> None:
    if value != "1":  # a form or image on another page cannot send it
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing X-Screen header")


def create_app(workbench: Workbench, sessions: Sessions) -> FastAPI:
    """The screen's app for one agent (no global state: tests may build many)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    guard = _Guard(workbench, sessions)

    @app.exception_handler(ActionRefused)
    async def refused(request: Request, err: ActionRefused) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=status.HTTP_409_CONFLICT)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, err: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=status.HTTP_404_NOT_FOUND)

    _add_page_routes(app, guard)
    _add_session_routes(app, guard)
    _add_work_routes(app, guard)
    return app


def _add_page_routes(app: FastAPI, guard: _Guard) -> None:
    workbench = guard.workbench
    viewer = Depends(guard.viewer)  # a default, not an alias: annotations here are strings

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(shell(workbench.view().station_id))

    @app.get("/static/{name}")
    async def static_file(name: str) -> Response:
        if name not in STATIC:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
        body = resources.files("agent.screen").joinpath("static", name).read_bytes()
        return Response(body, media_type=STATIC[name], headers={"Cache-Control": "no-cache"})

    @app.get("/stream")
    async def stream(request: Request) -> StreamingResponse:
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        body = _stream(request, workbench, lambda: guard.badge(request))
        return StreamingResponse(body, media_type="text/event-stream", headers=headers)

    @app.get("/api/view")
    async def view(request: Request) -> dict[str, Any]:
        return _payload(workbench, guard.badge(request))

    @app.get("/preview/{job_id}.png")
    async def preview(job_id: UUID, _: str = viewer) -> Response:
        png = workbench.preview_png(job_id)  # on the loop: it may read the SQLite store
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/proofs/{sha256}.png")
    async def proof(sha256: str, _: str = viewer) -> Response:
        if not SHA256.fullmatch(sha256):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such proof")
        png = workbench.proof_png(sha256)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


def _add_session_routes(app: FastAPI, guard: _Guard) -> None:
    workbench, sessions = guard.workbench, guard.sessions
    actor = Depends(guard.actor)  # a default, not an alias: annotations here are strings

    @app.post("/api/sign-in")
    async def sign_in(body: SignIn, x_screen: Annotated[str | None, Header()] = None) -> Response:
        _require_screen_header(x_screen)
        try:
            technician = workbench.sign_in(body.badge.strip(), body.pin)
        except AuthError as err:
            return JSONResponse({"detail": str(err)}, status_code=status.HTTP_401_UNAUTHORIZED)
        sessions.touch()
        response = JSONResponse({"badge": technician.badge, "name": technician.name})
        cookie = sessions.cookie_for(technician.badge)
        response.set_cookie(COOKIE, cookie, httponly=True, samesite="strict")
        return response

    @app.post("/api/sign-out")
    async def sign_out(badge: str = actor) -> Response:
        workbench.sign_out()
        response = JSONResponse({"signed_out": badge})
        response.delete_cookie(COOKIE)
        return response


def _add_work_routes(app: FastAPI, guard: _Guard) -> None:
    workbench = guard.workbench
    actor = Depends(guard.actor)  # a default, not an alias: annotations here are strings

    @app.post("/api/jobs/{job_id}/{action}")
    async def job_action(
        job_id: UUID, action: JobAction, body: JobActionBody, _: str = actor
    ) -> dict[str, str]:
        await _run_job_action(workbench, job_id, action, body)
        return {"job_id": str(job_id), "done": action}

    @app.post("/api/problem")
    async def report_problem(body: Report, _: str = actor) -> dict[str, str]:
        await workbench.report_problem(body.job_id, body.text)
        return {"done": "problem_reported"}

    @app.post("/api/maintenance")
    async def request_maintenance(body: Maintenance, _: str = actor) -> dict[str, str]:
        await workbench.request_maintenance(body.device, body.text)
        return {"done": "maintenance_requested"}


async def _run_job_action(
    workbench: Workbench, job_id: UUID, action: JobAction, body: JobActionBody
) -> None:
    if action == "acknowledge":
        await workbench.acknowledge(job_id)
    elif action in ("block", "scrap"):
        if not body.reason or not body.reason.strip():
            raise ActionRefused(f"{action}: say why (a reason is required)")
        act = workbench.block if action == "block" else workbench.scrap
        await act(job_id, body.reason.strip())
    else:
        if not body.step:
            raise ActionRefused(f"{action}: which step?")
        step_action = {
            "ready": workbench.ready,
            "frame": workbench.frame,
            "confirm-fire": workbench.confirm_fire,
            "sign-off": workbench.sign_off,
        }[action]
        await step_action(job_id, body.step)


def _payload(workbench: Workbench, badge: str | None) -> dict[str, Any]:
    """The view for this browser: everything when its technician is signed in, otherwise the
    station's state only (no job texts for a passer-by)."""
    view = workbench.view()
    if badge is None:
        data = view.model_dump(mode="json", include=PUBLIC_FIELDS)
        data["technician"] = None
    else:
        data = view.model_dump(mode="json")
    data["signed_in"] = badge is not None
    return data


def _sse(data: dict[str, Any]) -> bytes:
    return f"event: view\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _stream(
    request: Request, workbench: Workbench, badge: Callable[[], str | None]
) -> AsyncIterator[bytes]:
    """The view now, then at every change, for STREAM_MAX_S (then the browser reconnects)."""
    yield b"retry: 1000\n\n"
    last = _payload(workbench, badge())
    yield _sse(last)
    deadline = time.monotonic() + STREAM_MAX_S
    changed: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
    pump = asyncio.create_task(_pump_changes(workbench, changed))
    try:
        while (left := deadline - time.monotonic()) > 0 and not await request.is_disconnected():
            with contextlib.suppress(TimeoutError):  # a timeout also re-checks the session
                await asyncio.wait_for(changed.get(), timeout=min(left, 2.0))
            payload = _payload(workbench, badge())
            if payload != last:
                yield _sse(payload)
                last = payload
    finally:
        pump.cancel()


async def _pump_changes(workbench: Workbench, changed: asyncio.Queue[None]) -> None:
    """Turns the Workbench's change stream into "something changed" marks (at most one
    pending: the stream always sends the newest view)."""
    async for _ in workbench.watch():
        if changed.empty():
            changed.put_nowait(None)
