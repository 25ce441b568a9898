"""``benchfleet demo``: the whole floor on one machine until Ctrl-C.

A private mosquitto, the hub on SQLite and N simulated stations (sim laser + sim camera), each a
real process with its log under ``<data-dir>/logs``. Prints where to look, sends one example order
so a newcomer sees a job travel, then watches the children until SIGINT/SIGTERM and stops them
all (agents, hub, broker) on every exit path.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.panel import Panel

from agent.technicians import add_technician, load_technicians
from benchfleet.broker import HUB_USER, BrokerError, PrivateBroker, free_port, mosquitto_binary
from benchfleet.demo_http import HttpError, http_json
from benchfleet.processes import ManagedProcess, Supervisor
from protocol import auth
from protocol.models import JobStatus

READY_MARKER = "benchfleet demo ready:"
JOB_MARKER = "benchfleet demo example job:"
HEALTH_TIMEOUT = 60.0
JOB_FOLLOW_SECONDS = 120.0
STATIONS_WAIT_SECONDS = 30.0
TERMINAL_STATUSES = frozenset(
    {
        JobStatus.DONE,
        JobStatus.FAILED,
        JobStatus.NEEDS_REVIEW,
        JobStatus.CANCELLED,
        JobStatus.BLOCKED,
    }
)
CURL_ORDER = (
    '{"external_id":"demo-1","lines":[{"line_id":"1","piece":{"sku":"RING-14K-6",'
    '"serial":"SN-0001","metal":"gold","stones":[{"type":"diamond","treatment":"none"}],'
    '"declared_value":{"amount":1200,"currency":"EUR"}},'
    '"engraving":{"text":"Anna & Ben 2026","template":"ring_band","font":"futural"},'
    '"cleaning":{"method":"ultrasonic"}}]}'
)
# The documented development keys (hub/settings.py DEV_API_KEYS; docs/api.md): the demo hub
# runs in development, where they are accepted.
INTEGRATOR_KEY = "dev-integrator-key"
DEMO_BADGE, DEMO_PIN = "T100", "1234"  # the demo screens' technician (printed at start)
ENGINEER_KEY = "dev-engineer-key"  # signs in to the dashboards (development keys only)
ADMIN_HEADERS = {"X-API-Key": "dev-admin-key"}


class DemoError(Exception):
    """Startup failed; the message says where to look."""


def run_demo(*, stations: int, data_dir: Path, http_port: int, fresh: bool) -> int:
    """Run the demo until SIGINT or SIGTERM; return the process exit code."""
    console = Console(highlight=False)
    try:
        mosquitto_binary()
    except BrokerError as err:
        console.print(f"[red]cannot start the demo:[/red] {err}")
        return 2
    data_dir = _prepare_data_dir(data_dir, fresh=fresh)
    # Like production: no anonymous clients, a password per station, deploy/mosquitto/acl.
    broker = PrivateBroker(data_dir / "broker", policy=True)
    supervisor = Supervisor(data_dir / "logs")
    try:
        with _signals_interrupt():
            _run(console, supervisor, broker, stations=stations, http_port=http_port)
    except KeyboardInterrupt:
        console.print("\nstopping the demo ...")
        return 0
    except (DemoError, BrokerError) as err:
        console.print("[red]demo failed:[/red]", str(err), soft_wrap=True)
        return 1
    finally:
        _shutdown(console, supervisor, broker)
    return 0  # pragma: no cover - _run only returns by an exception


def _run(
    console: Console, sup: Supervisor, broker: PrivateBroker, *, stations: int, http_port: int
) -> None:
    data_dir = broker.workdir.parent
    broker.start()
    port = _pick_http_port(console, http_port)
    env = _child_env(broker.url_for(HUB_USER), data_dir, port)
    # Agents take their own broker credentials from their config files (not the hub's URL).
    agent_env = {k: v for k, v in env.items() if k != "BENCHFLEET_MQTT_URL"}
    # cwd: the data dir, so a .env file where the demo was started does not reach the hub;
    # -P: the data dir is not put on sys.path (its hub/ folder must never shadow our package)
    sup.add("hub", [sys.executable, "-P", "-m", "benchfleet", "hub"], env=env, cwd=data_dir)
    for config in write_station_configs(data_dir, stations, broker.url_for):
        argv = [sys.executable, "-P", "-m", "benchfleet", "agent", "-c", str(config)]
        sup.add(f"agent-{config.stem}", argv, env=agent_env, cwd=data_dir)
    sup.start_all()
    base = f"http://127.0.0.1:{port}"
    _wait_healthy(base, sup["hub"])
    _print_welcome(console, base, data_dir)
    print(f"{READY_MARKER} {base}", flush=True)
    _wait_stations(console, sup, base, stations)
    _print_screen_urls(console, data_dir, stations)
    _follow_example_order(console, sup, base)
    console.print("[dim]running; Ctrl-C stops everything[/dim]")
    while True:
        _report_exits(console, sup, broker)
        time.sleep(0.5)


def _prepare_data_dir(data_dir: Path, *, fresh: bool) -> Path:
    data_dir = data_dir.resolve()
    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir


def _pick_http_port(console: Console, requested: int) -> int:
    if requested == 0:
        return free_port()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", requested))
        except OSError:
            chosen = free_port()
            console.print(f"[yellow]port {requested} is busy; using port {chosen} instead[/yellow]")
            return chosen
    return requested


def _child_env(mqtt_url: str, data_dir: Path, http_port: int) -> dict[str, str]:
    """The environment of hub and agents: embedded defaults, nothing inherited from a site."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCHFLEET_")}
    env.update(
        PYTHONUNBUFFERED="1",
        BENCHFLEET_MQTT_URL=mqtt_url,
        BENCHFLEET_DATA_DIR=str(data_dir / "hub"),
        BENCHFLEET_HTTP_HOST="127.0.0.1",
        BENCHFLEET_HTTP_PORT=str(http_port),
        BENCHFLEET_HUB_ID="demo-hub",
        BENCHFLEET_ENVIRONMENT="development",
        BENCHFLEET_INSPECTION_WEIGHS="true",  # every station has a scale
        BENCHFLEET_SECRET_KEY=secrets.token_urlsafe(32),
        BENCHFLEET_STATION_KEY_SECRET=station_key_secret(data_dir),
    )
    return env


def station_key_secret(data_dir: Path) -> str:
    """The demo hub's master secret of station message keys: random, kept in the data dir
    (0600) so a restarted demo keeps its stations' keys."""
    path = data_dir / "keys" / "station-key-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


def _write_station_key(data_dir: Path, station_id: str) -> Path:
    """The station's message key, derived as `benchfleet station enroll` does (generation 1)."""
    key = auth.station_key(station_key_secret(data_dir).encode(), station_id, 1)
    path = data_dir / "keys" / f"{station_id}.key"
    path.touch(mode=0o600)
    path.write_text(auth.key_to_hex(key, 1))
    return path


def _write_demo_technician(path: Path) -> None:
    """One technician every demo screen knows (the PIN is printed: a demo, not a station)."""
    if DEMO_BADGE not in load_technicians(path):
        add_technician(path, DEMO_BADGE, "Demo Technician", DEMO_PIN, ["technician"])


def write_station_configs(
    data_dir: Path, count: int, broker_url_for: Callable[[str], str]
) -> list[Path]:
    """Write ``stations/st-01.toml`` ...: all four device families, each a simulator speaking
    the real protocol (GRBL, MT-SICS, Modbus RTU) on a pty; the camera photographs what the
    laser burned. Each station has its own broker credentials (``broker_url_for(id)``) and
    message key. Rewritten on every start (0600: they hold the station's password)."""
    folder = data_dir / "stations"
    folder.mkdir(parents=True, exist_ok=True)
    calibration_due = (date.today() + timedelta(days=180)).isoformat()
    paths = []
    for number in range(1, count + 1):
        station_id = f"st-{number:02d}"
        station_dir = folder / station_id
        burn = json.dumps(str(station_dir / "burn.png"))
        path = folder / f"{station_id}.toml"
        (station_dir / "screen.url").unlink(missing_ok=True)  # the agent writes the new one
        path.touch(mode=0o600)
        key_file = _write_station_key(data_dir, station_id)
        station_dir.mkdir(exist_ok=True)
        _write_demo_technician(station_dir / "technicians.toml")
        path.write_text(
            "# generated by `benchfleet demo`; rewritten on every start\n"
            f"station_id = {json.dumps(station_id)}\n"
            f"mqtt_url = {json.dumps(broker_url_for(station_id))}\n"
            f"key_file = {json.dumps(str(key_file))}\n"
            f"data_dir = {json.dumps(str(station_dir))}\n"
            "auto_signoff = true  # demo floor: nobody at the bench signs\n"
            "screen_port = 0  # the station screen on a free port (URL in <data_dir>/screen.url)\n"
            "devices = [\n"
            f'  {{ name = "laser", family = "laser", backend = "sim", '
            f"options = {{ render_path = {burn}, field_mm = 110 }} }},\n"
            f'  {{ name = "camera", family = "camera", backend = "sim", '
            f'options = {{ scene_path = {burn}, frame = "engraving", seed = {number} }} }},\n'
            f'  {{ name = "scale", family = "scale", backend = "sim", '
            f'options = {{ load_g = 3.{number}, calibration_due = "{calibration_due}" }} }},\n'
            '  { name = "cleaner", family = "cleaner", backend = "sim", '
            'options = { program = "quick-rinse", time_scale = 30 } },\n'
            "]\n"
        )
        paths.append(path)
    return paths


def _wait_healthy(base: str, hub: ManagedProcess) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while time.monotonic() < deadline:
        if not hub.alive:
            raise DemoError(
                f"the hub exited with status {hub.returncode}; the end of {hub.log_path}:\n"
                f"{hub.tail(30)}"
            )
        try:
            http_json("GET", f"{base}/health", timeout=1.0)
        except HttpError:
            time.sleep(0.2)
        else:
            return
    raise DemoError(
        f"the hub did not answer {base}/health within {HEALTH_TIMEOUT:.0f} s; "
        f"see its log {hub.log_path}:\n{hub.tail(30)}"
    )


def _print_welcome(console: Console, base: str, data_dir: Path) -> None:
    lines = [
        f"[bold]Dashboards[/bold]    {base}/dashboard  (sign in with key {ENGINEER_KEY})",
        f"[bold]API docs[/bold]      {base}/docs",
        f"[bold]Stations[/bold]      {base}/stations",
        f"[bold]Logs[/bold]          {data_dir / 'logs'}/  (hub.log, agent-st-NN.log)",
        f"[bold]Broker log[/bold]    {data_dir / 'broker' / 'mosquitto.log'}",
        f"[bold]Data[/bold]          {data_dir}",
        "",
        "Post an order with the command below; Ctrl-C stops everything.",
    ]
    console.print(Panel("\n".join(lines), title="benchfleet demo", expand=False))
    curl = (
        f"curl -s -X POST {base}/orders -H 'content-type: application/json' "
        f"-H 'X-API-Key: {INTEGRATOR_KEY}' -d '{CURL_ORDER}'"
    )
    console.print(curl, soft_wrap=True, markup=False)


def _wait_stations(console: Console, sup: Supervisor, base: str, expected: int) -> None:
    deadline = time.monotonic() + STATIONS_WAIT_SECONDS
    online = None
    while time.monotonic() < deadline:
        _report_exits(console, sup, None)
        try:
            stations = http_json("GET", f"{base}/stations", headers=ADMIN_HEADERS)
            online = sum(1 for station in stations if station["online"])
        except HttpError:
            online = None
        if online is not None and online >= expected:
            break
        time.sleep(0.5)
    if online is not None:
        console.print(f"stations online: {online}/{expected}")


def _print_screen_urls(console: Console, data_dir: Path, count: int) -> None:
    """Each station's screen URL, as its agent wrote it (agents start their screen at once)."""
    deadline = time.monotonic() + 10
    for number in range(1, count + 1):
        station_id = f"st-{number:02d}"
        url_file = data_dir / "stations" / station_id / "screen.url"
        while not url_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        url = url_file.read_text().strip() if url_file.exists() else "(not started; see its log)"
        console.print(f"[bold]Screen {station_id}[/bold]  {url}")
    console.print(
        f"  sign in on a screen with badge {DEMO_BADGE}, PIN {DEMO_PIN} (demo stations run jobs "
        "by themselves; the screen shows them and takes block/scrap/problem reports)"
    )


def _follow_example_order(console: Console, sup: Supervisor, base: str) -> None:
    order = json.loads(CURL_ORDER)
    order["external_id"] = f"demo-auto-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    try:
        created = http_json(
            "POST", f"{base}/orders", order, timeout=5.0, headers={"X-API-Key": INTEGRATOR_KEY}
        )
        job_id = str(created["jobs"][0]["job_id"])
    except HttpError as err:
        console.print(f"[yellow]the example order was not accepted: {err}[/yellow]")
        return
    print(f"{JOB_MARKER} {job_id}", flush=True)
    _follow_job(console, sup, base, job_id)


def _follow_job(console: Console, sup: Supervisor, base: str, job_id: str) -> None:
    """Print every transition of the job's history as it happens, until it ends."""
    console.print(f"following job {job_id} ({base}/jobs/{job_id}):")
    start = time.monotonic()
    shown = 0
    while time.monotonic() - start < JOB_FOLLOW_SECONDS:
        _report_exits(console, sup, None)
        try:
            job = http_json("GET", f"{base}/jobs/{job_id}", headers=ADMIN_HEADERS)
        except HttpError:
            time.sleep(0.5)
            continue
        for step in job["history"][shown:]:
            reason = f" ({step['reason']})" if step.get("reason") else ""
            console.print(
                f"  v{step['version']} {step['from_status']} -> [bold]{step['to_status']}[/bold]"
                f" by {step['actor']}{reason}"
            )
        shown = len(job["history"])
        if job["status"] in TERMINAL_STATUSES:
            return
        time.sleep(0.3)
    console.print(f"[yellow]job {job_id} is not finished after {JOB_FOLLOW_SECONDS:.0f} s[/yellow]")


def _report_exits(console: Console, sup: Supervisor, broker: PrivateBroker | None) -> None:
    for proc in sup.unexpected_exits():
        console.print(
            f"[red]{proc.name} (pid {proc.pid}) exited unexpectedly with status "
            f"{proc.returncode}[/red]; last lines of {proc.log_path}:"
        )
        console.print(proc.tail(15), markup=False, soft_wrap=True)
    if broker is not None and broker.process is not None and broker.process.poll() is not None:
        console.print(f"[red]mosquitto exited with {broker.process.returncode}[/red]")
        console.print(f"see {broker.log_path}")
        broker.process = None


def _shutdown(console: Console, sup: Supervisor, broker: PrivateBroker) -> None:
    """Stop agents, hub and broker; ignores further Ctrl-C so nothing is left behind."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _signals()}
    try:
        running = {proc.name for proc in sup if proc.alive}
        for proc, code in sup.stop_all(timeout=10.0):
            verb = "stopped" if proc.name in running else "had already exited:"
            console.print(f"{verb} {proc.name} (pid {proc.pid}, exit status {code})")
        if broker.process is not None and broker.process.poll() is None:
            pid = broker.process.pid
            broker.stop()
            console.print(f"stopped mosquitto (pid {pid}, exit status {broker.process.returncode})")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _signals() -> list[signal.Signals]:
    is_main = threading.current_thread() is threading.main_thread()
    return [signal.SIGINT, signal.SIGTERM] if is_main else []


def _raise_interrupt(signum: int, frame: FrameType | None) -> Any:
    raise KeyboardInterrupt


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """Inside the block SIGINT and SIGTERM stop the demo, even when the shell that started it
    in the background ignores SIGINT (Python then keeps ignoring it)."""
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in _signals()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
