"""GRBL reply parsing: recorded replies, the code tables, and hypothesis on garbage/round trips."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import DeviceProtocolError
from drivers.laser.grbl import codes
from drivers.laser.grbl.protocol import (
    STATES,
    StatusCache,
    StatusReport,
    format_status,
    parse_line,
    parse_options,
    parse_status,
)

FIXTURE = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "grbl" / "grbl-1.1h-replies.json").read_text()
)


@pytest.mark.parametrize("case", FIXTURE["lines"], ids=lambda case: case["raw"][:30])
def test_recorded_replies_parse_to_their_kind(case: dict[str, str]) -> None:
    assert type(parse_line(case["raw"].encode())).__name__ == case["kind"]


@pytest.mark.parametrize("raw", FIXTURE["garbage"])
def test_garbage_is_a_protocol_error(raw: str) -> None:
    with pytest.raises(DeviceProtocolError):
        parse_line(raw.encode("latin-1"))


def test_code_tables_cover_grbl_1_1() -> None:
    assert sorted(codes.errors()) == [*range(1, 18), *range(20, 39)]
    assert sorted(codes.alarms()) == list(range(1, 11))
    assert "Undefined feed rate" in codes.describe_error(22)
    assert codes.describe_alarm(3).startswith("ALARM:3 (Abort during cycle")
    assert "not in the GRBL 1.1 table" in codes.describe_error(99)


def test_options_give_planner_and_rx_sizes() -> None:
    assert parse_options("V,15,128") == ("V", 15, 128)
    assert parse_options("VL,35,1024") == ("VL", 35, 1024)


def test_cache_fills_wco_ov_and_accessories_from_earlier_reports() -> None:
    cache = StatusCache()
    cache.update(
        parse_status("<Run|MPos:5.000,5.000,0.000|WCO:1.000,2.000,0.000|Ov:120,100,90|A:C>")
    )
    later = cache.update(parse_status("<Run|MPos:6.000,7.000,0.000|FS:600,300>"))
    assert later.wco == (1.0, 2.0, 0.0)
    assert later.wpos == (5.0, 5.0, 0.0)  # WPos = MPos - WCO
    assert (later.overrides, later.accessories) == ((120, 100, 90), "C")
    off = cache.update(parse_status("<Idle|MPos:6.000,7.000,0.000|Ov:100,100,100>"))
    assert off.accessories == ""  # Ov without A: everything off


@given(st.binary(max_size=120))
def test_any_bytes_parse_or_raise_only_protocol_error(raw: bytes) -> None:
    with contextlib.suppress(DeviceProtocolError):
        parse_line(raw)


@given(st.text(alphabet="<>|:,.-0123456789ABCDEFGHIMNOPRSWXYZabcdefhiklnoprstuv", max_size=80))
def test_status_like_text_parses_or_raises_only_protocol_error(text: str) -> None:
    with contextlib.suppress(DeviceProtocolError):
        parse_line(text.encode())


milli = st.integers(-999_999, 999_999).map(lambda n: n / 1000)
vector = st.tuples(milli, milli, milli)


@st.composite
def reports(draw: st.DrawFn) -> StatusReport:
    state = draw(st.sampled_from(STATES))
    sub = draw(st.integers(0, 3)) if state in ("Hold", "Door") else None
    machine = draw(st.booleans())
    feed = draw(st.none() | st.integers(0, 30000).map(float))
    return StatusReport(
        state=state,
        substate=sub,
        mpos=draw(vector) if machine else None,
        wpos=None if machine else draw(vector),
        buffer=draw(st.none() | st.tuples(st.integers(0, 15), st.integers(0, 1023))),
        line=draw(st.none() | st.integers(0, 99999)),
        feed=feed,
        speed=None if feed is None else draw(st.none() | st.integers(0, 1000).map(float)),
        pins=draw(st.none() | st.sampled_from(["X", "XYZ", "D", "PH"])),
        wco=draw(st.none() | vector),
        overrides=draw(st.none() | st.tuples(*[st.integers(10, 200)] * 3)),
        accessories=draw(st.none() | st.sampled_from(["S", "C", "SF", "CM"])),
    )


@given(reports())
def test_status_reports_round_trip(report: StatusReport) -> None:
    assert parse_status(format_status(report)) == report
