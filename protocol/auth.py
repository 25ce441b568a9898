"""Message authentication: per-station keys and MACs over MQTT messages (stdlib only).

Each station has its own key, derived from the hub's master secret, the station id and a key
generation (bumped when a station is revoked, so its old key stops verifying):
``HMAC-SHA256(master, "benchfleet station key v1|<station>|<generation>")``. A message's MAC
is ``HMAC-SHA256(key, topic + NUL + payload)`` in hex: binding the topic means a message signed
for one station's topic cannot be replayed on another's. The MAC travels as the MQTT 5 user
properties ``bf-mac`` and ``bf-keygen``, so payloads and their models stay unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MAC_PROPERTY = "bf-mac"
KEYGEN_PROPERTY = "bf-keygen"
KEY_BYTES = 32
_KEY_LABEL = "benchfleet station key v1"


class KeyFileError(ValueError):
    """A station key file cannot be used; the message says why (never the key)."""


def station_key(master: bytes, station_id: str, generation: int) -> bytes:
    """The message key of ``station_id`` at key ``generation``."""
    if not master:
        raise ValueError("the master secret is empty")
    if generation < 1:
        raise ValueError(f"key generation must be >= 1, not {generation}")
    label = f"{_KEY_LABEL}|{station_id}|{generation}".encode()
    return hmac.new(master, label, hashlib.sha256).digest()


def sign(key: bytes, topic: str, payload: bytes) -> str:
    """The MAC of one message (hex)."""
    return hmac.new(key, topic.encode() + b"\0" + payload, hashlib.sha256).hexdigest()


def verify(key: bytes, topic: str, payload: bytes, mac: str | None) -> bool:
    """True if ``mac`` is this message's MAC under ``key`` (constant-time comparison)."""
    if not mac:
        return False
    return hmac.compare_digest(sign(key, topic, payload), mac)


@dataclass(frozen=True, slots=True)
class MacProperties:
    """The MAC and key generation a message carries (``None`` when absent)."""

    mac: str | None
    generation: int | None


def user_properties(
    key: bytes, generation: int, topic: str, payload: bytes
) -> list[tuple[str, str]]:
    """The MQTT 5 user properties that sign ``payload`` on ``topic``."""
    return [(MAC_PROPERTY, sign(key, topic, payload)), (KEYGEN_PROPERTY, str(generation))]


def read_properties(pairs: Iterable[tuple[str, str]] | None) -> MacProperties:
    """Pick ``bf-mac`` and ``bf-keygen`` out of a message's user properties."""
    found = dict(pairs or ())
    generation = found.get(KEYGEN_PROPERTY)
    return MacProperties(
        mac=found.get(MAC_PROPERTY),
        generation=int(generation) if generation and generation.isdigit() else None,
    )


def key_to_hex(key: bytes, generation: int) -> str:
    """The key file's content: ``<generation>:<hex key>`` and a newline."""
    return f"{generation}:{key.hex()}\n"


def load_key_file(path: Path) -> tuple[bytes, int]:
    """Read a station key file (``<generation>:<hex key>``, or bare hex for generation 1)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except OSError as err:
        raise KeyFileError(f"{path}: cannot read the key file: {err.strerror}") from err
    except UnicodeDecodeError:
        raise KeyFileError(f"{path}: the key file is not hex text") from None
    generation_text, _, hex_key = text.rpartition(":")
    try:
        generation = int(generation_text) if generation_text else 1
        key = bytes.fromhex(hex_key)
    except ValueError:
        raise KeyFileError(f"{path}: expected '<generation>:<64 hex digits>'") from None
    if len(key) != KEY_BYTES or generation < 1:
        raise KeyFileError(f"{path}: expected '<generation>:<64 hex digits>'")
    return key, generation
