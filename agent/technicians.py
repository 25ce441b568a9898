"""The station's technicians: badge id, name, salted scrypt hash of the PIN, roles.

A TOML file named by the station config's ``technicians`` (``benchfleet station
add-technician`` writes it), read on the station itself, so signing in works with the hub
unreachable. Five wrong PINs for a badge lock that badge out for 60 s (in memory: a restart
forgets the count, which costs an attacker a reboot per five guesses). Names are personal
data: logs and events name badges only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

log = logging.getLogger(__name__)

Badge = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
MAX_FAILURES = 5
LOCKOUT_S = 60.0
PIN_MIN, PIN_MAX = 4, 12
# scrypt parameters (RFC 7914's interactive-login choice): ~16 MiB, tens of ms per check.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class AuthError(Exception):
    """Sign-in refused; the message says why in words a technician understands."""


class TechniciansError(Exception):
    """The technicians file cannot be used; the message names the file and the problem."""


class Technician(BaseModel):
    """One person who may work this station."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    badge: Badge
    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    pin_hash: str = Field(repr=False)
    roles: list[str] = Field(default_factory=lambda: ["technician"], max_length=8)


def check_pin_format(pin: str) -> None:
    """PINs are 4-12 digits (a keypad on the screen); ValueError otherwise."""
    if not (pin.isdigit() and PIN_MIN <= len(pin) <= PIN_MAX):
        raise ValueError(f"a PIN is {PIN_MIN} to {PIN_MAX} digits")


def hash_pin(pin: str) -> str:
    """``scrypt$N$r$p$<salt hex>$<hash hex>`` with a fresh 16-byte salt."""
    check_pin_format(pin)
    salt = secrets.token_bytes(16)
    digest = _scrypt(pin, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def pin_matches(pin: str, stored: str) -> bool:
    """Does ``pin`` match the stored hash? (constant-time compare; False for a bad hash)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = _scrypt(pin, bytes.fromhex(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(computed, bytes.fromhex(digest))


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024)


def load_technicians(path: Path) -> dict[str, Technician]:
    """The technicians in ``path`` by badge; a missing file is an empty list."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise TechniciansError(f"{path}: {err}") from err
    people: dict[str, Technician] = {}
    for index, entry in enumerate(raw.get("technician", [])):
        try:
            person = Technician.model_validate(entry)
        except ValidationError as err:
            problem = err.errors(include_url=False)[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise TechniciansError(
                f"{path}: technician {index}: {where}: {problem['msg']}"
            ) from None
        if person.badge in people:
            raise TechniciansError(f"{path}: badge {person.badge} appears twice")
        people[person.badge] = person
    return people


def add_technician(path: Path, badge: str, name: str, pin: str, roles: list[str]) -> Technician:
    """Append a technician to ``path`` (created if needed); refuses a badge already there."""
    people = load_technicians(path)
    if badge in people:
        raise TechniciansError(f"{path}: badge {badge} is already registered")
    person = Technician(badge=badge, name=name, pin_hash=hash_pin(pin), roles=roles)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as file:
        file.write(_toml_entry(person))
    return person


def _toml_entry(person: Technician) -> str:
    roles = ", ".join(_toml_string(role) for role in person.roles)
    return (
        "\n[[technician]]\n"
        f"badge = {_toml_string(person.badge)}\n"
        f"name = {_toml_string(person.name)}\n"
        f"pin_hash = {_toml_string(person.pin_hash)}\n"
        f"roles = [{roles}]\n"
    )


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in escaped) + '"'


class TechnicianBook:
    """Checks badge + PIN against the file, with the lockout; reloads the file when it changed."""

    def __init__(self, path: Path | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._people: dict[str, Technician] = {}
        self._mtime: float | None = None
        self._failures: dict[str, int] = {}
        self._locked_until: dict[str, float] = {}

    def sign_in(self, badge: str, pin: str) -> Technician:
        """The technician, or :class:`AuthError` naming what is wrong (never which part when
        the badge or the PIN is wrong: both read "badge or PIN not recognised")."""
        badge = badge.strip()
        if wait := self.locked_for(badge):
            raise AuthError(f"too many wrong PINs for badge {badge}: try again in {wait:.0f} s")
        person = self._people_now().get(badge)
        if person is None or not pin_matches(pin, person.pin_hash):
            self._failed(badge)
            raise AuthError("badge or PIN not recognised")
        self._failures.pop(badge, None)
        return person

    def locked_for(self, badge: str) -> float:
        """Seconds left of ``badge``'s lockout (0 when not locked)."""
        until = self._locked_until.get(badge, 0.0)
        return max(0.0, until - self._clock())

    def _failed(self, badge: str) -> None:
        count = self._failures.get(badge, 0) + 1
        self._failures[badge] = count
        if count >= MAX_FAILURES:
            self._failures[badge] = 0
            self._locked_until[badge] = self._clock() + LOCKOUT_S
            log.warning("badge %s: locked for %.0f s after %d wrong PINs", badge[:32],
                        LOCKOUT_S, MAX_FAILURES)  # fmt: skip
            raise AuthError(
                f"{MAX_FAILURES} wrong PINs: badge {badge} is locked for {LOCKOUT_S:.0f} s"
            )

    def _people_now(self) -> dict[str, Technician]:
        if self.path is None:
            return {}
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return {}
        if mtime != self._mtime:
            self._people, self._mtime = load_technicians(self.path), mtime
        return self._people
