"""Evidence on a full data disk: held in memory and written again until space returns.

A job update or a proof photo is evidence: the hub's record of what happened to a customer's
piece. When the station's disk is full (SQLite's "database or disk is full", ``ENOSPC`` for a
photo file) :meth:`Persister.write` neither drops it nor lets the error end the agent: it keeps
the write (a closure over the update or the photo, in memory) and tries it again, waiting
``BACKOFF_START_S`` doubling to ``BACKOFF_CAP_S`` between attempts, until it goes through. The
job waits at that point meanwhile, so its next step, and the next job, start only after its
evidence is stored (the runner works one job at a time); what the outbox already holds is
still delivered, and telemetry and events were shed first (:mod:`agent.disk`).

The episode is logged at once (ERROR, then a reminder every ``REMIND_S``) and
reported to the hub as a ``disk_full`` event (major: the hub raises an alarm) as soon as one can
be stored, at the latest right after the held evidence; a ``disk_writable`` event says how long
it lasted. While it waits no device moves, so a stop need not wait for space: the held write is
then lost with the process, logged as such, and the job's write-ahead phase decides what a
restart does (a job past its irreversible start is reported interrupted, for review).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from agent.disk import is_disk_full
from agent.events import emit_event
from agent.outbox import Outbox, OutboxFullError
from protocol.models import Severity

log = logging.getLogger(__name__)
T = TypeVar("T")

BACKOFF_START_S = 0.5
BACKOFF_CAP_S = 2.0  # a failed attempt costs next to nothing; space may return any moment
REMIND_S = 60.0  # between two "still held" log lines
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
WRITE_ERRORS = (OutboxFullError, sqlite3.OperationalError, OSError)


def disk_full(err: BaseException) -> bool:
    """True for every way a full data disk shows up in the agent's writes."""
    if isinstance(err, OutboxFullError):
        return err.disk_full
    if isinstance(err, sqlite3.OperationalError):
        return is_disk_full(err)
    return isinstance(err, OSError) and err.errno in FULL_ERRNOS


class Persister:
    """Writes evidence, holding it in memory while the disk is full; see the module docstring.

    ``idle`` is the runner's "no device moves" event: set while a held write waits, so a stop
    does not wait for disk space. The counts live in ``outbox.disk`` (read by /metrics).
    """

    def __init__(
        self,
        outbox: Outbox,
        *,
        station_id: str,
        idle: asyncio.Event | None = None,
        backoff: tuple[float, float] = (BACKOFF_START_S, BACKOFF_CAP_S),
    ) -> None:
        self._outbox, self._station, self._idle = outbox, station_id, idle
        self._backoff = backoff
        self.state = outbox.disk
        self._since = 0.0  # when the current episode began (monotonic)
        self._seconds = 0.0  # how long it lasted, once over
        self._first = ""  # what it held first
        self._unreported = {"disk_full": False, "disk_writable": False}  # events to store

    @property
    def holding(self) -> bool:
        """Evidence waits in memory for space now."""
        return self.state.held > 0

    async def write(self, what: str, write: Callable[[], T]) -> T:
        """``write()``, stored however long a full disk takes; other errors are raised.
        ``what`` names it in logs and events (never a personal text)."""
        try:
            result = write()
        except WRITE_ERRORS as err:
            if not disk_full(err):
                raise
            return await self._hold(what, write, str(err))
        self._report()  # an episode the disk took no event for: now it may
        return result

    async def _hold(self, what: str, write: Callable[[], T], reason: str) -> T:
        self._begin(what, reason)
        stored = False
        try:
            result = await self._retry(what, write)
            stored = True
            return result
        finally:
            if not stored:  # the runner was stopped (or another error came): nothing stored
                log.error("%s was held in memory (data disk full) and is lost", what)
            self._end(stored)

    async def _retry(self, what: str, write: Callable[[], T]) -> T:
        delay, attempts, reminded = self._backoff[0], 0, 0.0
        while True:
            await self._pause(delay)
            attempts += 1
            self.state.retries += 1
            try:
                result = write()
            except WRITE_ERRORS as err:
                if not disk_full(err):
                    raise
            else:
                log.warning(
                    "%s stored after %.1f s held (%d attempts)", what, self._age(), attempts
                )
                return result
            delay = min(delay * 2, self._backoff[1])
            if self._age() - reminded >= REMIND_S:
                reminded = self._age()
                log.error("data disk still full: %s held %.0f s", what, reminded)

    async def _pause(self, seconds: float) -> None:
        """Wait before the next attempt; no device moves meanwhile (see ``idle``)."""
        idle = self._idle
        busy = idle is not None and not idle.is_set()
        if idle is not None:
            idle.set()
        try:
            await asyncio.sleep(seconds)
        finally:
            if busy and idle is not None:
                idle.clear()

    def _age(self) -> float:
        return time.monotonic() - self._since

    def _begin(self, what: str, reason: str) -> None:
        self.state.held += 1
        if self.state.held > 1:
            return
        self.state.episodes += 1
        self._since, self._first = time.monotonic(), what
        log.error(
            "data disk full (%s): %s held in memory, written again every %.0f s at most; the "
            "job waits and no new job starts until it is stored",
            reason, what, self._backoff[1],
        )  # fmt: skip
        self._unreported = {"disk_full": True, "disk_writable": False}
        self._report()  # stored if the disk still takes a small event (often it does not)

    def _end(self, stored: bool) -> None:
        self.state.held -= 1
        if stored and self.state.held == 0:
            self._seconds = round(self._age(), 1)
            self._unreported["disk_writable"] = True
            self._report()

    def _report(self) -> None:
        """Store the episode's events still unreported, in order (the disk may refuse them)."""
        if self._unreported["disk_full"]:
            what = f"{self._first} held in memory"
            if not self._event("disk_full", Severity.MAJOR, what):
                return
            self._unreported["disk_full"] = False
        if self._unreported["disk_writable"]:
            what = f"{self._first} and what followed stored after {self._seconds} s"
            self._unreported["disk_writable"] = not self._event(
                "disk_writable", Severity.INFO, what
            )

    def _event(self, kind: str, severity: Severity, message: str) -> bool:
        return emit_event(
            self._outbox,
            station_id=self._station,
            kind=kind,
            severity=severity,
            message=f"data disk full: {message}",
            data={"first": self._first},
        )
