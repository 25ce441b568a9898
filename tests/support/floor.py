"""A whole floor in processes: a private mosquitto, the hub and agents as real subprocesses.

Nothing here is mocked: the broker is mosquitto, the hub runs `benchfleet hub` on SQLite (or the
PostgreSQL at 127.0.0.1:5432), the agents run `benchfleet agent` with simulated devices.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from benchfleet.broker import PrivateBroker, free_port
from benchfleet.processes import ManagedProcess
from support.auth import TEST_STATION_SECRET, write_key_file

T = TypeVar("T")

# Short timers so failures show in seconds; the production defaults are in hub/settings.py.
HUB_TEST_ENV = {
    "BENCHFLEET_REASSIGN_AFTER_OFFLINE_S": "1",
    "BENCHFLEET_STARTUP_GRACE_S": "2",
    "BENCHFLEET_ASSIGNMENT_RESEND_S": "1",
    "BENCHFLEET_ACK_TIMEOUT_S": "60",
    "BENCHFLEET_SWEEP_INTERVAL_S": "0.2",
}
SCREEN_BADGE, SCREEN_PIN = "T100", "2468"  # the technician of floors with a screen
TERMINAL = {"done", "failed", "needs_review", "cancelled", "timed_out", "blocked"}


def wait_until(
    probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.1
) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Floor:
    """Broker, hub and agents of one test, with helpers to drive and observe them."""

    def __init__(self, root: Path, database_url: str | None) -> None:
        self.root = root
        # Like production: no anonymous clients, a password per user, deploy/mosquitto/acl.
        self.broker = PrivateBroker(root / "broker", policy=True)
        self.http_port = free_port()
        self.database_url = database_url
        # The documented development admin key (hub/settings.py DEV_API_KEYS).
        self.api = httpx.Client(
            base_url=f"http://127.0.0.1:{self.http_port}",
            timeout=5,
            headers={"X-API-Key": "dev-admin-key"},
        )
        self.hub: ManagedProcess | None = None
        self.agents: dict[str, ManagedProcess] = {}
        self._hub_starts = 0

    # -- processes --------------------------------------------------------------------------

    def start_hub(self) -> ManagedProcess:
        self._hub_starts += 1
        env = {
            **HUB_TEST_ENV,
            "BENCHFLEET_MQTT_URL": self.broker.url_for("hub"),
            "BENCHFLEET_STATION_KEY_SECRET": TEST_STATION_SECRET,
            "BENCHFLEET_DATA_DIR": str(self.root / "hub"),
            "BENCHFLEET_HTTP_PORT": str(self.http_port),
            "BENCHFLEET_HUB_ID": "test-hub",
        }
        if self.database_url:
            env["BENCHFLEET_DATABASE_URL"] = self.database_url
        self.hub = ManagedProcess(
            name="hub",
            argv=[sys.executable, "-m", "benchfleet", "hub"],
            env=env,
            log_path=self.root / "logs" / f"hub-{self._hub_starts}.log",
        )
        self.hub.start()
        wait_until(self._hub_healthy, timeout=30, what=f"hub health\n{self.hub.tail(30)}")
        return self.hub

    def start_agent(
        self,
        station_id: str,
        *,
        seconds_per_char: float = 0.01,
        extra_toml: str = "",
        laser_url: str | None = None,
        env: dict[str, str] | None = None,
        screen: bool = False,
        camera_scene: Path | None = None,
    ) -> ManagedProcess:
        """``extra_toml``: more top-level config lines; ``laser_url``: drive a GRBL at that
        port (a simulator the test runs) instead of the in-process sim laser; ``env``: the
        agent's environment (the fault suite's clock jump); ``screen``: technicians work the
        station through its screen on a free port (:meth:`screen_url`), signed in as
        SCREEN_BADGE/SCREEN_PIN; ``camera_scene``: the camera photographs that burned piece
        instead of what the laser burned (a wrong engraving for verification to catch)."""
        config = self.root / "stations" / f"{station_id}.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        # The sim camera photographs what the sim laser burned (as in the demo): the hub reads
        # those proof photos against the ordered text. Framed on the engraving (a station's
        # macro lens) a ring band's 1.4 mm letters are ~30-60 px high, as verification needs.
        burn = self.root / "stations" / f"{station_id}-burn.png"
        config.write_text(
            f'station_id = "{station_id}"\n'
            f"{self.identity_toml(station_id)}"
            f'data_dir = "{self.root / "stations" / station_id}"\n'
            "resend_after_s = 1\n"
            "telemetry_interval_s = 1\n"
            f"{extra_toml}"
            f"{self._screen_toml(station_id) if screen else ''}"
            "[[devices]]\n"
            + (
                f'name = "laser"\nfamily = "laser"\nbackend = "grbl"\nurl = "{laser_url}"\n'
                if laser_url
                else 'name = "laser"\nfamily = "laser"\nbackend = "sim"\n'
                f'options = {{ seconds_per_char = {seconds_per_char}, render_path = "{burn}" }}\n'
            )
            + "[[devices]]\n"
            'name = "camera"\nfamily = "camera"\nbackend = "sim"\n'
            f'options = {{ scene_path = "{camera_scene or burn}", frame = "engraving" }}\n'
        )
        starts = sum(1 for p in (self.root / "logs").glob(f"{station_id}-*.log"))
        process = ManagedProcess(
            name=station_id,
            argv=[sys.executable, "-m", "benchfleet", "agent", "-c", str(config)],
            env=dict(env or {}),
            log_path=self.root / "logs" / f"{station_id}-{starts + 1}.log",
        )
        process.start()
        self.agents[station_id] = process
        return process

    def _screen_toml(self, station_id: str) -> str:
        from agent.technicians import add_technician  # scrypt: only floors with a screen

        people = self.root / "stations" / f"{station_id}-technicians.toml"
        if not people.exists():
            add_technician(people, SCREEN_BADGE, "Test Technician", SCREEN_PIN, ["technician"])
        return f'operator = "screen"\nscreen_port = 0\ntechnicians = "{people}"\n'

    def screen_url(self, station_id: str, timeout: float = 20) -> str:
        """The station screen's URL, once the agent has written it."""
        url_file = self.root / "stations" / station_id / "screen.url"
        return wait_until(
            lambda: url_file.exists() and url_file.read_text().strip(),
            timeout=timeout,
            what=f"{station_id} screen.url",
        )

    def identity_toml(self, station_id: str) -> str:
        """Station config lines: broker URL with the station's credentials, its key file."""
        key_file = write_key_file(self.root / "keys" / station_id, station_id)
        return f'mqtt_url = "{self.broker.url_for(station_id)}"\nkey_file = "{key_file}"\n'

    def stop_all(self) -> None:
        for process in [*self.agents.values(), self.hub]:
            if process is not None:
                process.stop(timeout=10)
        self.broker.stop()
        self.api.close()

    # -- observation ------------------------------------------------------------------------

    def _hub_healthy(self) -> bool:
        try:
            return self.api.get("/health").status_code == 200
        except httpx.TransportError:
            return False

    def stations(self) -> dict[str, dict[str, Any]]:
        return {s["id"]: s for s in self.api.get("/stations").json()}

    def wait_online(self, station_id: str, online: bool = True, timeout: float = 20) -> float:
        """Wait until the hub shows ``station_id`` (off)line; return how long it took."""
        started = time.monotonic()
        wait_until(
            lambda: self.stations().get(station_id, {}).get("online") is online,
            timeout=timeout,
            what=f"{station_id} online={online}",
        )
        return time.monotonic() - started

    def post_order(self, external_id: str, text: str = "Anna & Ben 2026") -> str:
        line = {
            "piece": {
                "sku": "RING-14K-6",
                "serial": f"SN-{external_id}",
                "metal": "gold",
                "declared_value": {"amount": 950},
            },
            "engraving": {"text": text, "template": "ring_band"},
        }
        body = {"external_id": external_id, "lines": [line]}
        response = self.api.post("/orders", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["jobs"][0]["job_id"])

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.api.get(f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_status(self, job_id: str, *statuses: str, timeout: float = 30) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            try:
                job = self.job(job_id)
            except httpx.TransportError:
                return None  # the hub may be restarting
            return job if job["status"] in statuses else None

        return wait_until(probe, timeout=timeout, what=f"job {job_id} in {statuses}")
