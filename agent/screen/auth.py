"""Who may act on the station screen: the technician the Workbench signed in, holding the
session cookie the screen gave that browser.

The cookie holds ``badge|issued|hmac`` signed (HMAC-SHA256) with a per-agent secret generated
once into ``<data_dir>/screen.secret`` (mode 0600), so a cookie from another station or an old
install is refused. A session ends when the technician signs out, when another one signs in,
or after ``idle_s`` without an action (:class:`IdleWatch`). ``SameSite=Strict`` and an
``X-Screen: 1`` header on every write keep other pages from acting with the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

COOKIE = "benchfleet_screen"
SECRET_FILE = "screen.secret"  # noqa: S105 - a file name, not a secret


def load_secret(data_dir: Path) -> bytes:
    """The agent's screen secret; generated (32 random bytes, owner-only) on first use."""
    path = data_dir / SECRET_FILE
    try:
        secret = path.read_bytes()
    except FileNotFoundError:
        secret = b""
    if len(secret) >= 32:
        return secret
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(secret)
    return secret


class Sessions:
    """Signs and checks session cookies; remembers the last action for the idle sign-out."""

    def __init__(self, secret: bytes, *, idle_s: float) -> None:
        self._key = hashlib.sha256(b"screen-session:" + secret).digest()
        self.idle_s = idle_s
        self.last_action = time.monotonic()

    def _signature(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def cookie_for(self, badge: str) -> str:
        payload = f"{badge}|{int(time.time())}"
        return f"{payload}|{self._signature(payload)}"

    def badge_of(self, cookie: str | None) -> str | None:
        """The badge a genuine cookie names, or None for a missing or forged one."""
        if not cookie:
            return None
        payload, _, signature = cookie.rpartition("|")
        if not payload or not hmac.compare_digest(self._signature(payload), signature):
            return None
        return payload.rpartition("|")[0] or None

    def touch(self) -> None:
        """An action happened now (the idle clock starts again)."""
        self.last_action = time.monotonic()

    def idle_for(self, now: float | None = None) -> float:
        return (now if now is not None else time.monotonic()) - self.last_action
