"""A&D / Ohaus continuous output: recorded lines, parser properties, the driver on a pty."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.scale_rigs import Rig, expected_weight, recorded

from drivers.errors import DeviceError, DeviceProtocolError, DeviceTimeoutError
from drivers.scale.base import Unit, Weight
from drivers.scale.continuous import format_ad_line, parse_line
from drivers.scale.sim import ContinuousSimulator

MakeRig = Callable[..., Awaitable[Rig]]


@pytest.mark.parametrize(("line", "expected"), recorded("continuous_lines.txt"))
def test_recorded_line(line: bytes, expected: str) -> None:
    if expected.startswith("error "):
        _, error_name, words = expected.split(" ", 2)
        with pytest.raises(DeviceError) as caught:
            parse_line(line)
        assert type(caught.value).__name__ == error_name
        assert words in str(caught.value)
    else:
        assert parse_line(line) == expected_weight(expected)


@given(st.binary(max_size=60) | st.from_regex(rb"[STUOLQEC,+\-0-9. gmkct?]{0,30}", fullmatch=True))
def test_garbage_raises_only_device_errors(line: bytes) -> None:
    with contextlib.suppress(DeviceError):
        parse_line(line)


@given(
    st.decimals(min_value=-9999, max_value=99999, places=3, allow_nan=False),
    st.sampled_from(list(Unit)),
    st.booleans(),
)
def test_ad_lines_round_trip(value: Decimal, unit: Unit, stable: bool) -> None:
    weight = Weight(value, unit, stable)
    assert parse_line(format_ad_line(weight, 3).encode() + b"\r\n") == weight


# ---- the driver over a pty ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_reading_from_before_the_call_is_never_returned(make_rig: MakeRig) -> None:
    rig = await make_rig("continuous")
    assert isinstance(rig.simulator, ContinuousSimulator)
    rig.simulator.interval_s = 0.3  # slow stream: an old "0 g" line would be waiting
    await asyncio.sleep(0.4)
    rig.balance.settle_s = 0.0
    rig.balance.place("2.5")
    assert (await rig.scale.read_stable(within=2)).value == Decimal("2.5000")


@pytest.mark.asyncio
async def test_only_garbage_is_a_protocol_error_not_a_timeout(make_rig: MakeRig) -> None:
    rig = await make_rig("continuous")
    rig.simulator.corrupt_replies(1000)
    with pytest.raises(DeviceProtocolError, match="only unreadable lines"):
        await rig.scale.read_stable(within=0.3)
    rig.simulator.corrupt_replies(0)
    assert (await rig.scale.read_stable(within=2)).stable


@pytest.mark.asyncio
async def test_garbage_between_good_lines_is_skipped(make_rig: MakeRig) -> None:
    rig = await make_rig("continuous")
    rig.balance.place("1.25")
    rig.simulator.corrupt_replies(3)
    assert (await rig.scale.read_stable(within=2)).value == Decimal("1.2500")


@pytest.mark.asyncio
async def test_zero_that_never_comes_back_times_out(make_rig: MakeRig) -> None:
    rig = await make_rig("continuous")
    rig.balance.place("0.01")
    rig.balance.never_settles = True
    with pytest.raises(DeviceTimeoutError, match="never settled at zero"):
        await rig.scale.zero(within=0.3)


@pytest.mark.asyncio
async def test_silence_is_a_timeout(make_rig: MakeRig) -> None:
    rig = await make_rig("continuous")
    assert isinstance(rig.simulator, ContinuousSimulator)
    rig.simulator.interval_s = 60.0
    await asyncio.sleep(0.05)
    with pytest.raises(DeviceTimeoutError, match="no line arrived"):
        await rig.scale.read_now()
