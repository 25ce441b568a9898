"""The broker policy of the demo and the test floor: per-station credentials and the ACL of
deploy/mosquitto/acl, with every denial visible (MQTT 5 reason codes) and reported.

Real parts: mosquitto with allow_anonymous false, the hub and agents as subprocesses.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

import pytest
from support.auth import raw_client, signed_properties
from support.floor import Floor, wait_until

from benchfleet.broker import DEPLOY_ACL, connack_code, credentials_url
from benchfleet.processes import ManagedProcess
from protocol import encode, topics
from protocol.models import Event, Severity

pytestmark = [pytest.mark.broker, pytest.mark.slow]
NOT_AUTHORIZED = 0x87


def hub_rows(floor: Floor, sql: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{floor.root / 'hub' / 'hub.db'}?mode=ro", uri=True) as db:
        return db.execute(sql, args).fetchall()


def test_anonymous_and_wrong_passwords_are_refused(floor: Floor) -> None:
    broker = floor.broker
    _, password = broker.client_credentials("st-01")
    assert connack_code(broker.host, broker.port, "st-01", password) == 0
    assert connack_code(broker.host, broker.port, "", "") == NOT_AUTHORIZED
    assert connack_code(broker.host, broker.port, "st-01", "wrong") == NOT_AUTHORIZED
    assert connack_code(broker.host, broker.port, "st-02", password) == NOT_AUTHORIZED


def test_a_station_can_neither_write_nor_read_another_stations_namespace(floor: Floor) -> None:
    floor.start_hub()
    floor.start_agent("st-b")
    floor.wait_online("st-b")
    codes: list[int] = []
    received: list[str] = []
    rogue = raw_client(floor.broker, "st-a", "rogue-st-a")
    rogue.on_publish = lambda _c, _u, _mid, code, _p: codes.append(int(code.value))
    rogue.on_message = lambda _c, _u, message: received.append(message.topic)
    rogue.subscribe(topics.down_filter("st-b"), qos=1)  # granted, but delivers nothing
    forged = Event(
        station_id="st-b", epoch=999, seq=1, kind="alarm", severity=Severity.CRITICAL, message="x"
    )
    topic, payload = topics.up("st-b", topics.Up.EVENT), encode(forged)
    # Even signed with st-b's key (as if that leaked), the broker refuses st-a's publish.
    props = signed_properties("st-b", topic, payload)
    rogue.publish(topic, payload, qos=1, properties=props).wait_for_publish(5)
    wait_until(lambda: codes, timeout=5, what="the PUBACK of the forged event")
    assert codes == [NOT_AUTHORIZED]

    job_id = floor.post_order("o-policy")
    assert floor.wait_status(job_id, "done")["status"] == "done"  # st-b got and did the job
    rogue.loop_stop()
    rogue.disconnect()
    assert received == []  # st-a never saw st-b's assignment (engraving text: personal data)
    assert hub_rows(floor, "SELECT count(*) FROM events WHERE epoch = 999") == [(0,)]
    assert floor.stations()["st-b"]["alarm"] in (None, False, "")


def test_an_acl_denial_reaches_the_hub_as_a_broker_denied_event(tmp_path: Path) -> None:
    # An ACL like deploy's, minus job updates: the agent's up/job publishes are refused.
    acl = tmp_path / "acl"
    acl.write_text(
        DEPLOY_ACL.read_text().replace(
            "pattern write bf/v1/st/%u/up/#",
            "\n".join(
                f"pattern write bf/v1/st/%u/up/{kind}"
                for kind in ("birth", "death", "event", "telemetry", "proof")
            ),
        )
    )
    floor = Floor(tmp_path / "floor", database_url=None)
    floor.broker.acl_source = acl
    floor.broker.start()
    try:
        floor.start_hub()
        agent = floor.start_agent("st-01")
        floor.wait_online("st-01")
        job_id = floor.post_order("o-denied")

        def denied_events() -> list[tuple[object, ...]]:
            sql = "SELECT severity, message FROM events WHERE kind = 'broker_denied'"
            return hub_rows(floor, sql)

        rows = wait_until(denied_events, timeout=20, what="a broker_denied event at the hub")
        assert rows[0][0] == "major"
        assert "bf/v1/st/st-01/up/job: 0x87" in str(rows[0][1])
        assert floor.job(job_id)["status"] == "assigned"  # the acknowledgement never arrived
        assert "broker refused publish to" in " ".join(agent.tail(200).split())  # rich wraps
    finally:
        floor.stop_all()


def test_a_refused_password_is_one_clear_line_and_a_backoff(floor: Floor) -> None:
    floor.broker.client_credentials("st-x")  # the user exists; the agent has the wrong password
    config = floor.root / "st-x.toml"
    url = credentials_url(floor.broker.url, "st-x", "not-the-password")
    config.write_text(f'station_id = "st-x"\nmqtt_url = "{url}"\ndata_dir = "{floor.root / "x"}"\n')
    agent = ManagedProcess(
        name="st-x",
        argv=[sys.executable, "-m", "benchfleet", "agent", "-c", str(config)],
        env={},
        log_path=floor.root / "logs" / "st-x.log",
    )
    agent.start()
    try:
        time.sleep(8)
        log = agent.tail(400)
    finally:
        agent.stop(timeout=10)
    log = " ".join(log.split())  # rich wraps long lines
    refusals = log.count("refused station st-x")
    assert 1 <= refusals <= 3, log  # REFUSED_BACKOFF_S = 5: no hot loop
    assert "0x87" in log
    assert f"st-x:***@127.0.0.1:{floor.broker.port}" in log  # names the broker, not the password
    assert "not-the-password" not in log
    assert "Traceback" not in log
