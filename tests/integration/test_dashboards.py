"""Alarms and dashboards on a real floor: mosquitto, the hub and an agent as subprocesses.

The station drives a simulated laser and camera plus a scale on a serial port that does not
exist: the agent reports the scale unavailable (a major event), which the hub turns into an
alarm, tells the station (AlarmNotice), and shows on the dashboards. The dashboards are driven
in Debian's chromium through Playwright (never a downloaded browser).
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from support.browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS
from support.floor import HUB_TEST_ENV, Floor, wait_until

from benchfleet.processes import ManagedProcess

pytestmark = pytest.mark.broker


def start_station_with_broken_scale(floor: Floor, station_id: str) -> Path:
    """Like Floor.start_agent, plus a scale whose port is missing; returns the data dir."""
    data_dir = floor.root / "stations" / station_id
    config = floor.root / "stations" / f"{station_id}.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'station_id = "{station_id}"\n{floor.identity_toml(station_id)}'
        f'data_dir = "{data_dir}"\nresend_after_s = 1\ntelemetry_interval_s = 1\n'
        '[[devices]]\nname = "laser"\nfamily = "laser"\nbackend = "sim"\n'
        '[[devices]]\nname = "camera"\nfamily = "camera"\nbackend = "sim"\n'
        '[[devices]]\nname = "scale"\nfamily = "scale"\nbackend = "mtsics"\n'
        'url = "/dev/benchfleet-no-such-port"\n'
    )
    process = ManagedProcess(
        name=station_id,
        argv=[sys.executable, "-m", "benchfleet", "agent", "-c", str(config)],
        env={},
        log_path=floor.root / "logs" / f"{station_id}-1.log",
    )
    process.start()
    floor.agents[station_id] = process
    return data_dir


def open_alarm(floor: Floor, station_id: str) -> dict[str, Any] | None:
    alarms = floor.api.get("/alarms", params={"state": "open", "station": station_id}).json()
    return next((a for a in alarms if a["kind"] == "device_unavailable"), None)


def station_alarm_states(data_dir: Path) -> list[tuple[str, str]]:
    """What the agent's SQLite holds (read-only, beside the running agent: WAL allows it)."""
    db = sqlite3.connect(f"file:{data_dir / 'agent.sqlite3'}?mode=ro", uri=True)
    try:
        return [(r[0], r[1]) for r in db.execute("SELECT alarm_id, state FROM alarms")]
    except sqlite3.OperationalError:
        return []  # the table is created when the agent starts its link
    finally:
        db.close()


RULES = """
[[rule]]
id = "station_cpu_seen"
device = "station"
metric = "cpu_percent"
op = ">="
limit = 0
severity = "minor"
message = "test rule: any CPU sample raises it"
"""


def test_device_and_threshold_alarms_reach_hub_and_station(
    floor: Floor, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = floor.root / "alarm_rules.toml"
    rules.write_text(RULES)
    monkeypatch.setitem(HUB_TEST_ENV, "BENCHFLEET_ALARM_RULES_PATH", str(rules))
    floor.start_hub()
    data_dir = start_station_with_broken_scale(floor, "st-a1")
    floor.wait_online("st-a1")
    alarm = wait_until(lambda: open_alarm(floor, "st-a1"), timeout=20, what="scale alarm")
    assert (alarm["device"], alarm["severity"], alarm["state"]) == ("scale", "major", "active")
    wait_until(
        lambda: (alarm["id"], "active") in station_alarm_states(data_dir),
        timeout=10,
        what="AlarmNotice stored by the station",
    )
    acked = floor.api.post(f"/alarms/{alarm['id']}/acknowledge")
    assert acked.json()["state"] == "acknowledged"
    wait_until(
        lambda: (alarm["id"], "acknowledged") in station_alarm_states(data_dir),
        timeout=10,
        what="acknowledgement told to the station",
    )
    # the threshold path: telemetry -> rule -> alarm -> station
    rule_alarm = wait_until(
        lambda: next(
            (a for a in floor.api.get("/alarms").json() if a["kind"] == "station_cpu_seen"), None
        ),
        timeout=20,
        what="threshold alarm from station telemetry",
    )
    assert (rule_alarm["source"], rule_alarm["device"]) == ("rule:station_cpu_seen", "station")
    wait_until(
        lambda: (rule_alarm["id"], "active") in station_alarm_states(data_dir),
        timeout=10,
        what="threshold AlarmNotice stored by the station",
    )


@pytest.mark.slow
def test_dashboards_in_chromium(floor: Floor) -> None:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    floor.start_hub()
    start_station_with_broken_scale(floor, "st-d1")
    floor.wait_online("st-d1")
    alarm = wait_until(lambda: open_alarm(floor, "st-d1"), timeout=20, what="scale alarm")
    base = f"http://127.0.0.1:{floor.http_port}"
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/dashboard")
            assert page.url.endswith("/dashboard/login")  # nobody gets in unsigned
            page.fill("#api_key", "dev-engineer-key")
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/dashboard")
            row = page.locator("tr[data-station='st-d1']")
            row.locator(".badge.online").wait_for(timeout=15_000)
            alarm_row = page.locator(f"tr[data-alarm='{alarm['id']}']")
            alarm_row.wait_for(timeout=15_000)
            assert "device_unavailable" in alarm_row.inner_text()
            page.screenshot(path=str(SCREENSHOTS / "dashboard-overview.png"), full_page=True)

            alarm_row.locator("button.ack").click()
            wait_until(
                lambda: floor.api.get("/alarms", params={"state": "acknowledged"}).json(),
                timeout=10,
                what="alarm acknowledged through the UI",
            )
            acked = floor.api.get("/alarms", params={"station": "st-d1"}).json()
            assert [a["state"] for a in acked if a["id"] == alarm["id"]] == ["acknowledged"]
            alarm_row.locator("td.state", has_text="acknowledged").wait_for(timeout=10_000)

            page.click("a[href='/dashboard/stations/st-d1']")
            chart = page.locator("section[data-device='station'] figure[data-metric='cpu_percent']")
            # "attached", not "visible": a flat series (CPU pinned at 100 % on a busy machine)
            # is a horizontal line, a zero-height box Playwright calls hidden.
            chart.locator("polyline").wait_for(state="attached", timeout=20_000)
            page.wait_for_function(
                "() => Number(document.querySelector(\"figure[data-metric='cpu_percent']\")"
                ".dataset.points) >= 5",
                timeout=20_000,
            )
            page.screenshot(path=str(SCREENSHOTS / "dashboard-station.png"), full_page=True)
            page.goto(f"{base}/dashboard/alarms")
            page.locator(f"tr[data-alarm='{alarm['id']}']").wait_for(timeout=10_000)
            page.screenshot(path=str(SCREENSHOTS / "dashboard-alarms.png"), full_page=True)
        finally:
            browser.close()
