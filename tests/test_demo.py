"""benchfleet.processes (the supervisor) and `benchfleet demo`, with real child processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from rich.console import Console

from agent.config import load_station_config
from benchfleet import demo as demo_module
from benchfleet.broker import INSTALL_HINT, BrokerError
from benchfleet.demo import JOB_MARKER, READY_MARKER, write_station_configs
from benchfleet.processes import ManagedProcess, Supervisor, group_exists
from protocol import auth

PY = sys.executable
# Markers are printed as 'u' + 'p' so the log's header line (it shows the argv) cannot match.
SLEEPER = [PY, "-c", "import time; print('u' + 'p', flush=True); time.sleep(60)"]
# Ignores SIGTERM: stop() must fall back to SIGKILL.
STUBBORN = [
    PY,
    "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ign' + 'oring', flush=True); time.sleep(60)",
]
# Starts a grandchild in its process group, then waits: the group must go with it.
PARENT_OF_ONE = [
    PY,
    "-c",
    "import subprocess, sys, time; "
    "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
    "print(c.pid, flush=True); time.sleep(60)",
]


def _wait_for(check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _last_line(proc: ManagedProcess) -> str:
    return proc.tail(1)


def test_log_captures_output_and_stop_terminates(tmp_path: Path) -> None:
    proc = ManagedProcess("sleeper", SLEEPER, tmp_path / "logs" / "sleeper.log")
    proc.start()
    _wait_for(lambda: _last_line(proc) == "up")
    assert proc.alive
    assert os.getpgid(proc.pid) == proc.pid  # type: ignore[arg-type]
    assert os.getsid(proc.pid) == proc.pid  # type: ignore[arg-type]
    assert proc.stop(timeout=5) == -signal.SIGTERM
    assert not proc.alive
    assert "start sleeper" in proc.tail(5)


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    proc = ManagedProcess("stubborn", STUBBORN, tmp_path / "stubborn.log")
    proc.start()
    _wait_for(lambda: _last_line(proc) == "ignoring")
    started = time.monotonic()
    assert proc.stop(timeout=0.5) == -signal.SIGKILL
    assert time.monotonic() - started < 3


def test_stop_takes_the_whole_process_group(tmp_path: Path) -> None:
    proc = ManagedProcess("parent", PARENT_OF_ONE, tmp_path / "parent.log")
    proc.start()
    _wait_for(lambda: _last_line(proc).isdigit())
    grandchild = int(_last_line(proc))
    assert psutil.pid_exists(grandchild)
    proc.stop(timeout=5)
    assert not group_exists(proc.pid)  # type: ignore[arg-type]
    _wait_for(lambda: not psutil.pid_exists(grandchild) or _is_zombie(grandchild))


def _is_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_supervisor_reports_an_unexpected_kill_once(tmp_path: Path) -> None:
    with Supervisor(tmp_path / "logs") as sup:
        sup.add("a", SLEEPER)
        sup.add("b", SLEEPER)
        sup.start_all()
        assert sup.unexpected_exits() == []
        os.kill(sup["b"].pid, signal.SIGKILL)  # type: ignore[arg-type]
        _wait_for(lambda: not sup["b"].alive)
        assert [p.name for p in sup.unexpected_exits()] == ["b"]
        assert sup.unexpected_exits() == []
        assert sup["b"].returncode == -signal.SIGKILL
        assert (tmp_path / "logs" / "a.log").exists()
    assert not sup["a"].alive


def test_stop_all_stops_in_reverse_order_and_leaves_nothing(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "logs", env={**os.environ, "MARK": "x"})
    names = ["hub", "agent-st-01", "agent-st-02"]
    for name in names:
        sup.add(name, SLEEPER)
    sup.start_all()
    pids = [sup[n].pid for n in names]
    stopped = sup.stop_all(timeout=5)
    assert [p.name for p, _ in stopped] == list(reversed(names))
    assert all(code == -signal.SIGTERM for _, code in stopped)
    assert sup.unexpected_exits() == []  # stopped on purpose: not reported
    assert not any(psutil.pid_exists(pid) and not _is_zombie(pid) for pid in pids)  # type: ignore[arg-type]


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path)
    sup.add("hub", SLEEPER)
    with pytest.raises(ValueError, match="already supervised"):
        sup.add("hub", SLEEPER)


def test_station_configs(tmp_path: Path) -> None:
    paths = write_station_configs(tmp_path, 2, lambda st: f"mqtt://{st}:pw-{st}@127.0.0.1:1234")
    assert [p.name for p in paths] == ["st-01.toml", "st-02.toml"]
    config = load_station_config(paths[1])  # what the agent will read: validated
    assert config.station_id == "st-02"
    assert config.mqtt_url == "mqtt://st-02:pw-st-02@127.0.0.1:1234"  # its own credentials
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in paths)
    secret = demo_module.station_key_secret(tmp_path).encode()
    assert config.message_key() == (auth.station_key(secret, "st-02", 1), 1)
    assert config.data_dir == tmp_path / "stations" / "st-02"
    assert [(d.family, d.backend) for d in config.devices] == [
        ("laser", "sim"),
        ("camera", "sim"),
        ("scale", "sim"),
        ("cleaner", "sim"),
    ]
    laser, camera = config.devices[0], config.devices[1]
    assert laser.options["render_path"] == camera.options["scene_path"]  # photographs the burn


def test_demo_without_mosquitto_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing() -> str:
        raise BrokerError(INSTALL_HINT)

    monkeypatch.setattr(demo_module, "mosquitto_binary", missing)
    code = demo_module.run_demo(stations=1, data_dir=tmp_path / "d", http_port=0, fresh=False)
    assert code == 2
    assert "apt-get install -y mosquitto" in capsys.readouterr().out


def test_a_busy_http_port_is_replaced(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        chosen = demo_module._pick_http_port(Console(), taken)
    assert chosen != taken
    assert f"port {taken} is busy; using port {chosen}" in capsys.readouterr().out


# --- the real demo: needs hub and agent -------------------------------------------------


def _get(url: str) -> object:
    # The documented development admin key: the demo hub runs in development.
    request = urllib.request.Request(url, headers={"X-API-Key": "dev-admin-key"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


class DemoRun:
    """`python -m benchfleet demo` as a subprocess whose stdout is collected by a thread."""

    def __init__(self, data_dir: Path, stations: int) -> None:
        argv = [PY, "-m", "benchfleet", "demo", "--stations", str(stations)]
        argv += ["--http-port", "0", "--data-dir", str(data_dir)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def value_after(self, marker: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if line.startswith(marker):
                    return line[len(marker) :].strip()
            assert self.proc.poll() is None, "demo exited:\n" + "\n".join(self.lines)
            time.sleep(0.1)
        raise AssertionError(f"no {marker!r} line in:\n" + "\n".join(self.lines))


def _children_of(data_dir: Path) -> list[psutil.Process]:
    """Processes that belong to the demo in ``data_dir`` (by argv or BENCHFLEET_DATA_DIR)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        env = proc.info["environ"] or {}
        if str(data_dir) in cmd or str(data_dir) in env.get("BENCHFLEET_DATA_DIR", ""):
            found.append(proc)
    return found


def _stop_for_sure(demo: DemoRun, data_dir: Path) -> None:
    """After a failure: stop the demo the polite way, then kill whatever is left of it."""
    if demo.proc.poll() is None:
        demo.proc.send_signal(signal.SIGINT)
        try:
            demo.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            demo.proc.kill()
            demo.proc.wait()
    for proc in _children_of(data_dir):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()


def _run_demo_once(data_dir: Path) -> None:
    demo = DemoRun(data_dir, stations=2)
    try:
        base = demo.value_after(READY_MARKER, timeout=90)
        job_id = demo.value_after(JOB_MARKER, timeout=30)
        _wait_for(lambda: sum(s["online"] for s in _get(f"{base}/stations")) == 2, timeout=30)
        _wait_for(lambda: _get(f"{base}/jobs/{job_id}")["status"] == "done", timeout=120)
        _wait_for(lambda: any("verifying -> done" in line for line in demo.lines), timeout=10)
        assert _children_of(data_dir)
        demo.proc.send_signal(signal.SIGINT)
        assert demo.proc.wait(timeout=40) == 0, "\n".join(demo.lines)
    finally:
        _stop_for_sure(demo, data_dir)
    leftovers = _children_of(data_dir)
    assert leftovers == [], [p.info["cmdline"] for p in leftovers]


@pytest.mark.slow
@pytest.mark.broker
@pytest.mark.timeout(300)
def test_demo_runs_twice_in_the_same_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    _run_demo_once(data_dir)
    _run_demo_once(data_dir)
    assert (data_dir / "logs" / "hub.log").read_text().count("start hub") == 2
