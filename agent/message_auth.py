"""The station's side of message authentication (protocol/auth.py, docs/security.md).

Everything the station publishes is signed with its key. What the hub sends must carry a
valid MAC under the same key, and an assignment must not be a replay:

- a job the station holds at version V refuses an assignment of a version below V;
- a job the station does not know refuses an assignment issued more than ``window_s`` before
  the newest assignment the station has from the hub (the hub's own clock on both sides, so
  the station's clock does not matter; the hub re-sends open jobs with a fresh ``issued_at``).

Limits: within the window, a genuine assignment for this station that it never received can
still arrive late (it is what the hub asked for); a station without ``key_file`` neither signs
nor checks (the hub refuses its messages when ``station_auth = "required"``).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from datetime import datetime, timedelta

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from protocol import auth
from protocol.models import JobAssignment

log = logging.getLogger(__name__)
DEFAULT_WINDOW_S = 600.0


class MessageAuth:
    """Signs the station's messages and checks the hub's; ``key`` None: authentication off."""

    def __init__(
        self,
        key: tuple[bytes, int] | None,
        db: sqlite3.Connection,
        *,
        window_s: float = DEFAULT_WINDOW_S,
    ) -> None:
        self._key = key
        self._db = db
        self._window = timedelta(seconds=window_s)
        self._newest: datetime | None = None

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def user_properties(self, topic: str, payload: bytes) -> list[tuple[str, str]]:
        """The signing user properties of one message (none when authentication is off)."""
        if self._key is None:
            return []
        key, generation = self._key
        return auth.user_properties(key, generation, topic, payload)

    def properties(
        self, topic: str, payload: bytes, packet: int = PacketTypes.PUBLISH
    ) -> Properties | None:
        """PUBLISH (or Will) properties that sign one message."""
        pairs = self.user_properties(topic, payload)
        if not pairs:
            return None
        props = Properties(packet)  # type: ignore[no-untyped-call]
        props.UserProperty = pairs
        return props

    def signature_problem(
        self, topic: str, payload: bytes, user_properties: Iterable[tuple[str, str]] | None
    ) -> str | None:
        """Why a message from the hub is not authentic (None: it is, or auth is off)."""
        if self._key is None:
            return None
        key, generation = self._key
        props = auth.read_properties(user_properties)
        if props.mac is None:
            return "no bf-mac property"
        if props.generation != generation:
            return f"key generation {props.generation} is not ours ({generation})"
        if not auth.verify(key, topic, payload, props.mac):
            return "the MAC does not match"
        return None

    def replay_problem(self, assignment: JobAssignment) -> str | None:
        """Why an authentic assignment is a replay (None: it is not); see the module doc."""
        held = self._db.execute(
            "SELECT version FROM jobs WHERE job_id = ?", (str(assignment.job_id),)
        ).fetchone()
        if held is not None and assignment.version < held[0]:
            return f"version {assignment.version} is older than the held version {held[0]}"
        newest = self._newest_issued()
        if held is None and newest is not None and assignment.issued_at < newest - self._window:
            return (
                f"issued {assignment.issued_at.isoformat()}, more than "
                f"{self._window.total_seconds():.0f} s before the newest assignment "
                f"({newest.isoformat()})"
            )
        return None

    def accepted(self, assignment: JobAssignment) -> None:
        """Remember the newest ``issued_at`` of an assignment that passed the checks."""
        if self._newest is None or assignment.issued_at > self._newest:
            self._newest = assignment.issued_at

    def _newest_issued(self) -> datetime | None:
        if self._newest is None:  # after a restart: the newest assignment the station stored
            row = self._db.execute(
                "SELECT max(json_extract(assignment, '$.issued_at')) FROM jobs"
            ).fetchone()
            if row is not None and row[0]:
                self._newest = datetime.fromisoformat(row[0])
        return self._newest
