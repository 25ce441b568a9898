"""protocol.auth: station keys and message MACs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import auth

MASTER = b"m" * 32
KEY = auth.station_key(MASTER, "st-01", 1)
topics_ = st.text(min_size=1, max_size=80)
payloads = st.binary(max_size=512)


def test_keys_differ_by_station_generation_and_master() -> None:
    keys = {
        auth.station_key(MASTER, "st-01", 1),
        auth.station_key(MASTER, "st-01", 2),
        auth.station_key(MASTER, "st-02", 1),
        auth.station_key(b"other master", "st-01", 1),
    }
    assert len(keys) == 4
    assert all(len(key) == auth.KEY_BYTES for key in keys)
    with pytest.raises(ValueError, match="generation"):
        auth.station_key(MASTER, "st-01", 0)


@given(topic=topics_, payload=payloads)
def test_a_signed_message_verifies(topic: str, payload: bytes) -> None:
    assert auth.verify(KEY, topic, payload, auth.sign(KEY, topic, payload))


@given(topic=topics_, payload=payloads, other_topic=topics_, other_payload=payloads)
def test_any_change_of_topic_or_payload_breaks_the_mac(
    topic: str, payload: bytes, other_topic: str, other_payload: bytes
) -> None:
    mac = auth.sign(KEY, topic, payload)
    if (other_topic, other_payload) != (topic, payload):
        assert not auth.verify(KEY, other_topic, other_payload, mac)


@given(payload=payloads, station=st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True))
def test_another_key_does_not_verify(payload: bytes, station: str) -> None:
    mac = auth.sign(KEY, "t", payload)
    assert auth.verify(KEY, "t", payload, mac)
    if station != "st-01":
        assert not auth.verify(auth.station_key(MASTER, station, 1), "t", payload, mac)
    assert not auth.verify(auth.station_key(MASTER, "st-01", 2), "t", payload, mac)


def test_topic_and_payload_boundary_is_unambiguous() -> None:
    # topic + NUL + payload: moving bytes across the boundary changes the MAC
    assert auth.sign(KEY, "a/b", b"c") != auth.sign(KEY, "a/", b"bc")


def test_verify_refuses_missing_or_malformed_macs() -> None:
    assert not auth.verify(KEY, "t", b"p", None)
    assert not auth.verify(KEY, "t", b"p", "")
    assert not auth.verify(KEY, "t", b"p", "zz" * 32)


def test_verify_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """verify() goes through hmac.compare_digest (timing does not depend on where it differs)."""
    calls: list[tuple[str, str]] = []
    real = auth.hmac.compare_digest
    monkeypatch.setattr(
        auth.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b)
    )
    mac = auth.sign(KEY, "t", b"p")
    assert auth.verify(KEY, "t", b"p", mac)
    assert calls == [(mac, mac)]


def test_properties_round_trip() -> None:
    pairs = auth.user_properties(KEY, 3, "t", b"p")
    read = auth.read_properties(pairs)
    assert read.generation == 3
    assert auth.verify(KEY, "t", b"p", read.mac)
    assert auth.read_properties(None) == auth.MacProperties(None, None)
    assert auth.read_properties([("bf-keygen", "x")]).generation is None


def test_key_file_round_trip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "st.key"
    path.write_text(auth.key_to_hex(KEY, 4))
    assert auth.load_key_file(path) == (KEY, 4)
    path.write_text(KEY.hex())
    assert auth.load_key_file(path) == (KEY, 1)
    for bad in ("nothex", "2:abcd", "0:" + KEY.hex()):
        path.write_text(bad)
        with pytest.raises(auth.KeyFileError, match="expected"):
            auth.load_key_file(path)
    with pytest.raises(auth.KeyFileError, match="cannot read"):
        auth.load_key_file(tmp_path / "missing")
