"""MT-SICS: recorded replies, parser properties, and the driver against the simulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.scale_rigs import SERIAL, Rig, expected_weight, recorded

from drivers.errors import DeviceError, DeviceProtocolError, DeviceTimeoutError
from drivers.scale.base import Unit, Weight
from drivers.scale.mtsics import (
    MtSicsScale,
    format_weight,
    parse_reply,
    parse_weight,
    raise_for_error,
)

MakeRig = Callable[..., Awaitable[Rig]]


def interpret(line: bytes) -> str | Weight:
    """What the driver makes of one reply, as the fixture file words it."""
    reply = parse_reply(line)
    raise_for_error(reply)
    if reply.status == "I":
        return "busy"
    if reply.id == "I4":
        return f"serial {' '.join(reply.fields)}"
    if reply.id == "I2":
        return f"model {' '.join(reply.fields)}"
    if reply.id == "Z":
        return "ok"
    return parse_weight(reply)


@pytest.mark.parametrize(("line", "expected"), recorded("mtsics_replies.txt"))
def test_recorded_reply(line: bytes, expected: str) -> None:
    if expected.startswith("error "):
        _, error_name, words = expected.split(" ", 2)
        with pytest.raises(DeviceError) as caught:
            interpret(line)
        assert type(caught.value).__name__ == error_name
        assert words in str(caught.value)
    elif expected.startswith("weight "):
        assert interpret(line) == expected_weight(expected)
    else:
        assert interpret(line) == expected


@given(st.binary(max_size=60) | st.from_regex(rb'[SZTIDELA0-9 +\-."gmkct]{0,30}', fullmatch=True))
def test_garbage_raises_only_device_errors(line: bytes) -> None:
    with contextlib.suppress(DeviceError):
        interpret(line)


@given(
    st.decimals(min_value=-1000, max_value=100000, places=4, allow_nan=False),
    st.sampled_from(list(Unit)),
    st.booleans(),
)
def test_weight_replies_round_trip(value: Decimal, unit: Unit, stable: bool) -> None:
    weight = Weight(value, unit, stable)
    assert parse_weight(parse_reply(format_weight("S", weight, 4).encode())) == weight


def test_carats_are_exactly_a_fifth_of_a_gram() -> None:
    weight = Weight(Decimal("1.2345"), Unit.CARAT, stable=True)
    assert weight.grams == Decimal("0.24690")
    assert weight.to(Unit.GRAM).to(Unit.CARAT).value == Decimal("1.2345")


# ---- the driver over a pty ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_identify_reads_serial_and_model(make_rig: MakeRig) -> None:
    rig = await make_rig("mtsics")
    identity = await rig.scale.identify()
    assert identity.serial_number == SERIAL
    assert identity.model == "XS204 220 g"


@pytest.mark.asyncio
async def test_busy_answers_are_retried_until_the_balance_settles(make_rig: MakeRig) -> None:
    rig = await make_rig("mtsics")
    rig.balance.settle_s = 0.8  # longer than the balance's own 0.3 s: it answers "S I" first
    rig.balance.place("3.1415")
    weight = await rig.scale.read_stable(within=3)
    assert weight == Weight(Decimal("3.1415"), Unit.GRAM, stable=True)


@pytest.mark.asyncio
async def test_never_settling_times_out_and_leaves_the_line_clean(make_rig: MakeRig) -> None:
    rig = await make_rig("mtsics")
    rig.balance.never_settles = True
    rig.balance.place("5")
    with pytest.raises(DeviceTimeoutError, match="never settled"):
        await rig.scale.read_stable(within=0.5)
    rig.balance.never_settles = False
    rig.balance.place("6")
    await asyncio.sleep(0.15)
    assert (await rig.scale.read_stable(within=2)).value == Decimal("6.0000")


@pytest.mark.asyncio
async def test_garbage_is_a_protocol_error_then_the_balance_is_reset(make_rig: MakeRig) -> None:
    rig = await make_rig("mtsics")
    rig.balance.place("7.5")
    await asyncio.sleep(0.15)
    rig.simulator.corrupt_replies(1)
    with pytest.raises(DeviceProtocolError, match="not ASCII"):
        await rig.scale.read_stable(within=2)
    assert (await rig.scale.read_stable(within=2)).value == Decimal("7.5000")


@pytest.mark.asyncio
async def test_unknown_command_answer_es_is_a_syntax_error(make_rig: MakeRig) -> None:
    rig = await make_rig("mtsics")
    scale = rig.scale
    assert isinstance(scale, MtSicsScale)
    with pytest.raises(DeviceProtocolError, match="syntax error"):
        await scale._exchange("SNR", 1.0)


@pytest.mark.asyncio
async def test_zero_out_of_range_names_it(make_rig: MakeRig) -> None:
    rig = await make_rig("mtsics")
    rig.balance.place("100")
    with pytest.raises(DeviceError, match="zero range exceeded"):
        await rig.scale.zero(within=2)
