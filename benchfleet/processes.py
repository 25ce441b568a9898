"""A small supervisor for child processes: the demo and the integration tests use it to run the
hub and the agents as real processes, each with its own log file.

Every child starts in its own session (so a Ctrl-C in the terminal reaches only the supervisor,
which then stops the children in order) and is stopped as a whole process group (so helpers the
child started, such as a process pool, go with it). On Linux a child also gets SIGTERM when the
supervisor dies without cleaning up (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class ManagedProcess:
    """One named child process whose stdout and stderr go to ``log_path`` (appended)."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    die_with_parent: bool = True
    _popen: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _stopping: bool = field(default=False, init=False, repr=False)

    def start(self) -> None:
        """Start the process (a no-op while it is running)."""
        if self.alive:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        preexec: Callable[[], None] | None = (
            die_with_parent if self.die_with_parent and sys.platform == "linux" else None
        )
        with self.log_path.open("ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"\n=== {stamp} start {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(  # noqa: S603 - argv comes from our own code
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(self.env) if self.env is not None else None,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=preexec,  # noqa: PLW1509 - only prctl, async-signal-safe
            )
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit status once the process has ended (negative: killed by that signal)."""
        return self._popen.poll() if self._popen else None

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` or :meth:`kill` was called for the current run."""
        return self._stopping

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process to end; ``subprocess.TimeoutExpired`` after ``timeout``."""
        if self._popen is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._popen.wait(timeout)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``timeout`` s; return the exit status."""
        if self._popen is None:
            return None
        self._stopping = True
        if self._popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self._popen.wait(timeout)
        self._reap_group(timeout=min(timeout, 2.0))
        return self._popen.returncode

    def kill(self) -> None:
        """SIGKILL the whole process group now (a crash, as far as the child can tell)."""
        if self._popen is None:
            return
        self._stopping = True
        self._signal_group(signal.SIGKILL)
        self._popen.wait()

    def tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the log file ('' when there is none yet)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - 64 * 1024))
                text = log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self._popen is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, sig)  # its own session: pgid == pid

    def _reap_group(self, timeout: float) -> None:
        """Give leftovers in the process group ``timeout`` s after the leader ended, then kill."""
        assert self._popen is not None
        deadline = time.monotonic() + timeout
        while group_exists(self._popen.pid):
            if time.monotonic() >= deadline:
                self._signal_group(signal.SIGKILL)
                return
            time.sleep(0.05)


def group_exists(pgid: int) -> bool:
    """True while any process in process group ``pgid`` is still alive."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Supervisor:
    """Named processes started in order and stopped in reverse order; a context manager."""

    def __init__(self, log_dir: Path, *, env: Mapping[str, str] | None = None) -> None:
        self.log_dir = log_dir
        self.env = env
        self._procs: dict[str, ManagedProcess] = {}
        self._reported: set[tuple[str, int]] = set()

    def add(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> ManagedProcess:
        """Register a process (not started); its log is ``log_dir/<name>.log``."""
        if name in self._procs:
            raise ValueError(f"a process named {name!r} is already supervised")
        proc = ManagedProcess(
            name=name,
            argv=argv,
            log_path=self.log_dir / f"{name}.log",
            env=env if env is not None else self.env,
            cwd=cwd,
        )
        self._procs[name] = proc
        return proc

    def start(self, name: str) -> ManagedProcess:
        proc = self._procs[name]
        proc.start()
        return proc

    def start_all(self) -> None:
        for proc in self._procs.values():
            proc.start()

    def __getitem__(self, name: str) -> ManagedProcess:
        return self._procs[name]

    def __iter__(self) -> Iterator[ManagedProcess]:
        return iter(list(self._procs.values()))

    def __len__(self) -> int:
        return len(self._procs)

    def unexpected_exits(self) -> list[ManagedProcess]:
        """Processes that ended without being stopped, each reported once per run."""
        found = []
        for proc in self._procs.values():
            if proc.pid is None or proc.alive or proc.stopping:
                continue
            key = (proc.name, proc.pid)
            if key not in self._reported:
                self._reported.add(key)
                found.append(proc)
        return found

    def stop_all(self, timeout: float = 10.0) -> list[tuple[ManagedProcess, int | None]]:
        """Stop every started process, last started first; return each with its exit status."""
        stopped = []
        for proc in reversed(list(self._procs.values())):
            if proc.pid is not None:
                stopped.append((proc, proc.stop(timeout)))
        return stopped

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
