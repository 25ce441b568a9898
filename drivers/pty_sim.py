"""Device simulators on a pseudo-terminal: the driver opens a real tty, byte for byte.

A simulator owns the master side of a pty and runs in its own thread (it stands for a separate
piece of hardware, so it must not share the driver's event loop). The driver opens the slave
side by path — or by a stable symlink, like a udev ``/dev/serial/by-id`` name — through the same
``serial_for_url`` code path as real hardware. :meth:`PtySimulator.unplug` closes the master
(the driver sees the port vanish, as when a USB cable is pulled); :meth:`PtySimulator.replug`
makes a new pty and points the symlink at it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import tty
from abc import ABC, abstractmethod
from pathlib import Path

log = logging.getLogger(__name__)


class PtySimulator(ABC):
    """Base of every simulator: subclasses implement :meth:`on_bytes` (and maybe :meth:`tick`)."""

    tick_s: float = 0.01

    def __init__(self, *, link: Path | None = None) -> None:
        self.link = link
        self._master: int | None = None
        self._slave: int | None = None
        self._slave_path = ""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._write_lock = threading.Lock()

    @property
    def port(self) -> str:
        """What a driver opens: the symlink when there is one, else the pty's slave path."""
        return str(self.link) if self.link else self._slave_path

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def start(self) -> str:
        """Create the pty, start the simulator thread, return :attr:`port`."""
        self._open_pty()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        self.on_plug()
        return self.port

    def stop(self) -> None:
        """Stop the thread and close the pty."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._close_pty()
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()

    def unplug(self) -> None:
        """The cable is pulled: the driver's reads and writes fail from now on."""
        self._close_pty()

    def replug(self) -> None:
        """The cable is back: a fresh pty (new slave path; the symlink follows)."""
        self._close_pty()
        self._open_pty()
        self.on_plug()

    def send(self, data: bytes) -> None:
        """Write bytes towards the driver (safe from any thread; dropped while unplugged)."""
        with self._write_lock:
            if self._master is None:
                return
            try:
                os.write(self._master, data)
            except OSError as err:
                log.debug("%s: write failed: %s", type(self).__name__, err)

    @abstractmethod
    def on_bytes(self, data: bytes) -> None:
        """Handle bytes the driver wrote (called on the simulator thread)."""

    def tick(self) -> None:  # noqa: B027 - optional hook
        """Time passes (called every :attr:`tick_s` on the simulator thread)."""

    def on_plug(self) -> None:  # noqa: B027 - optional hook
        """The device powered up (after :meth:`start` and :meth:`replug`).

        Bytes sent here before a driver opens the port are flushed by pyserial's ``open()``
        (it resets the input buffer), as a real board's power-up banner is lost to a host that
        was not listening; drivers must ask for an identity (GRBL: soft reset or ``$I``).
        """

    # ---- internals ------------------------------------------------------------------------

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        # Keep our slave fd open: a master whose slave is closed reads EIO until a driver opens.
        self._master, self._slave = master, slave
        self._slave_path = os.ttyname(slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self._slave_path)
            tmp.replace(self.link)

    def _close_pty(self) -> None:
        with self._write_lock:
            for fd in (self._master, self._slave):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._master = self._slave = None

    def _run(self) -> None:
        while not self._stop.is_set():
            master = self._master
            if master is None:
                self._stop.wait(self.tick_s)
                continue
            try:
                ready, _, _ = select.select([master], [], [], self.tick_s)
                data = os.read(master, 4096) if ready else b""
            except (OSError, ValueError):
                data = b""  # unplugged under us, or no driver attached yet
                self._stop.wait(self.tick_s)
            if data:
                self.on_bytes(data)
            self.tick()
