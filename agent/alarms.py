"""The station's alarms as the hub tells them (AlarmNotice on down/alarm).

Kept in memory and in the agent's SQLite (table ``alarms``) so the station screen can show
the open ones even after a restart with the hub unreachable. A notice older than what we hold
for the same alarm is ignored: notices may arrive twice or out of order (QoS 1, resends).
"""

from __future__ import annotations

import logging
import sqlite3
from uuid import UUID

from protocol.models import AlarmNotice

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS alarms (
    alarm_id TEXT PRIMARY KEY,
    updated_at TEXT NOT NULL,
    state TEXT NOT NULL,
    notice TEXT NOT NULL
);
"""


class StationAlarms:
    """The alarms of this station, newest notice per alarm."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        with db:
            db.executescript(SCHEMA)
        rows = db.execute("SELECT notice FROM alarms").fetchall()
        self._alarms: dict[UUID, AlarmNotice] = {}
        for (text,) in rows:
            notice = AlarmNotice.model_validate_json(text)
            self._alarms[notice.alarm_id] = notice

    def on_alarm(self, notice: AlarmNotice) -> bool:
        """Keep ``notice`` unless we hold a newer one for that alarm; True if kept."""
        held = self._alarms.get(notice.alarm_id)
        if held is not None and held.updated_at > notice.updated_at:
            return False
        if held is not None and (held.state, held.updated_at) == (notice.state, notice.updated_at):
            return False  # the same notice again
        self._alarms[notice.alarm_id] = notice
        with self._db:
            self._db.execute(
                "INSERT INTO alarms (alarm_id, updated_at, state, notice) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (alarm_id) DO UPDATE SET updated_at = excluded.updated_at, "
                "state = excluded.state, notice = excluded.notice",
                (
                    str(notice.alarm_id),
                    notice.updated_at.isoformat(),
                    notice.state,
                    notice.model_dump_json(),
                ),
            )
        level = logging.INFO if notice.state == "cleared" else logging.WARNING
        log.log(
            level,
            "alarm %s (%s, %s, %s): %s",
            notice.alarm_id,
            notice.device or "station",
            notice.kind,
            notice.severity,
            notice.state,
        )
        return True

    def open_alarms(self) -> list[AlarmNotice]:
        """Active and acknowledged alarms, most severe first (for the station screen)."""
        rank = {"critical": 0, "major": 1, "minor": 2, "warning": 3, "info": 4}
        found = [a for a in self._alarms.values() if a.state != "cleared"]
        return sorted(found, key=lambda a: (rank.get(a.severity.value, 9), a.since))

    def all_alarms(self) -> list[AlarmNotice]:
        return sorted(self._alarms.values(), key=lambda a: a.since)
