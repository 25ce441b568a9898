"""An altered or replayed assignment is refused by the agent before any device moves.

Real broker, hub and agent; the rogue client has broker rights to the station's down topic
(it logs in as the hub user, as a leaked hub password would allow): only the MAC and the
replay rule stand between it and the laser.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any

import pytest
from support.auth import raw_client
from support.floor import Floor, wait_until

from protocol import topics

pytestmark = [pytest.mark.broker, pytest.mark.slow]
STATION = "st-01"


def agent_rows(floor: Floor, sql: str) -> list[tuple[Any, ...]]:
    path = floor.root / "stations" / STATION / "agent.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
        return db.execute(sql).fetchall()


def refused_events(floor: Floor) -> list[tuple[Any, ...]]:
    path = floor.root / "hub" / "hub.db"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        sql = "SELECT severity, message, job_id FROM events WHERE kind = 'assignment_refused'"
        return db.execute(sql).fetchall()


def test_altered_and_replayed_assignments_never_reach_the_laser(floor: Floor) -> None:
    floor.start_hub()
    floor.start_agent(STATION)
    floor.wait_online(STATION)
    captured: list[tuple[bytes, list[tuple[str, str]]]] = []
    rogue = raw_client(floor.broker, "hub", "rogue-hub")
    rogue.on_message = lambda _c, _u, m: captured.append((m.payload, m.properties.UserProperty))
    rogue.subscribe(topics.down(STATION, topics.Down.JOB), qos=1)
    job_id = floor.post_order("o-integrity")
    finished = floor.wait_status(job_id, "done")
    wait_until(lambda: captured, timeout=5, what="a captured assignment")
    burn = floor.root / "stations" / f"{STATION}-burn.png"
    burned_at = burn.stat().st_mtime_ns  # the sim laser renders what it burned here
    jobs_before = agent_rows(floor, "SELECT job_id, version, phase FROM jobs")

    original, properties = captured[0]
    assert json.loads(original)["version"] < finished["version"]
    altered = json.loads(original)
    altered["job_id"] = str(uuid.uuid4())
    altered["engraving"]["text"] = "Not what was ordered"
    down = topics.down(STATION, topics.Down.JOB)
    for payload in (json.dumps(altered).encode(), original):  # altered, then an old version
        rogue.publish(down, payload, qos=1, properties=_props(properties)).wait_for_publish(5)
    rows = wait_until(lambda: len(refused_events(floor)) >= 2 and refused_events(floor), timeout=15,
                      what="two assignment_refused events")  # fmt: skip
    rogue.loop_stop()
    rogue.disconnect()

    assert {row[0] for row in rows} == {"major"}
    messages = sorted(str(row[1]) for row in rows)
    assert "bad or missing signature: the MAC does not match" in messages[0]
    assert "replayed assignment: version" in messages[1]
    assert agent_rows(floor, "SELECT job_id, version, phase FROM jobs") == jobs_before
    assert burn.stat().st_mtime_ns == burned_at  # no G-code reached the laser
    assert floor.job(job_id)["version"] == finished["version"]
    letters = agent_rows(floor, "SELECT reason FROM dead_letters")
    assert len(letters) == 2


def _props(pairs: list[tuple[str, str]]) -> Any:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.UserProperty = pairs
    return props
