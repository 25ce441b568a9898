"""The station screen as an agent component: uvicorn in the agent's own asyncio loop.

One loop, no thread: the screen reads the :class:`~agent.workbench.Workbench` directly. The
socket is bound before serving so a free port (``screen_port = 0``) is known at once; the URL
is logged and written to ``<data_dir>/screen.url`` (the demo prints it). uvicorn's own signal
handling is switched off: the agent's SIGTERM/SIGINT handlers stop every component in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from agent.screen.app import create_app
from agent.screen.auth import Sessions, load_secret
from agent.workbench import Workbench

log = logging.getLogger(__name__)

URL_FILE = "screen.url"
IDLE_CHECK_S = 1.0
SHUTDOWN_S = 3  # open event streams never hold the agent's stop up for longer


class _AgentLoopServer(uvicorn.Server):
    """uvicorn without its signal handlers (they would replace the agent's)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class StationScreen:
    """Component: serves the screen while it runs; signs an idle technician out."""

    def __init__(
        self, workbench: Workbench, *, host: str, port: int, data_dir: Path, idle_s: float
    ) -> None:
        self._workbench = workbench
        self._host, self._port, self._data_dir = host, port, data_dir
        self.sessions = Sessions(load_secret(data_dir), idle_s=idle_s)
        self.url: str | None = None
        self._server: _AgentLoopServer | None = None

    async def run(self) -> None:
        app = create_app(self._workbench, self.sessions)
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,  # request paths carry job ids only, but keep the log quiet
            lifespan="off",
            timeout_graceful_shutdown=SHUTDOWN_S,
        )
        self._server = _AgentLoopServer(config)
        sock = _bind(self._host, self._port)
        if sock is None:  # the agent keeps working; the log said why there is no screen
            return
        host, port = sock.getsockname()[:2]
        self.url = f"http://{_url_host(host)}:{port}/"
        (self._data_dir / URL_FILE).write_text(self.url + "\n", encoding="utf-8")
        log.info("station screen at %s", self.url)
        idle = asyncio.create_task(self._sign_out_when_idle(), name="screen.idle")
        try:
            await self._server.serve(sockets=[sock])
        finally:
            idle.cancel()
            sock.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True

    async def _sign_out_when_idle(self) -> None:
        while True:
            await asyncio.sleep(IDLE_CHECK_S)
            view = self._workbench.view()
            if view.technician is not None and self.sessions.idle_for() > self.sessions.idle_s:
                log.info("screen: technician %s signed out after idle", view.technician.badge)
                self._workbench.sign_out()


def _bind(host: str, port: int) -> socket.socket | None:
    """A listening-ready socket on ``host:port``, or None (logged) when it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        log.error("station screen: cannot listen on %s:%s: %s", host, port, err.strerror)  # noqa: TRY400 - the reason is enough
        return None
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
