"""One back-to-back suite that every registered scale backend must pass (python-can's
``back2back_test`` idea): each runs against a simulated balance over a real pty."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest
from support.scale_rigs import RIGS, SERIAL, Rig

from drivers.errors import (
    DeviceError,
    DeviceProtocolError,
    DeviceReportedError,
    DeviceTimeoutError,
    DeviceUnavailableError,
)
from drivers.registry import backends
from drivers.scale.base import ScaleState, Unit, WrongScaleError

MakeRig = Callable[..., Awaitable[Rig]]
SCALE_BACKENDS = sorted(backend for family, backend in backends() if family == "scale")


def test_every_registered_backend_has_a_rig() -> None:
    assert set(SCALE_BACKENDS) == set(RIGS)


@pytest.fixture(params=SCALE_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.asyncio
async def test_identity_after_open(make_rig: MakeRig, backend: str) -> None:
    rig = await make_rig(backend)
    assert rig.scale.state is ScaleState.READY
    assert (await rig.scale.identify()).serial_number == SERIAL


@pytest.mark.asyncio
async def test_stable_reading_of_a_placed_load(make_rig: MakeRig, backend: str) -> None:
    rig = await make_rig(backend)
    rig.balance.place("12.3456")
    weight = await rig.scale.read_stable(within=2)
    assert weight.stable
    assert weight.grams == Decimal("12.3456")
    assert weight.unit is Unit.GRAM


@pytest.mark.asyncio
async def test_readings_in_carats(make_rig: MakeRig, backend: str) -> None:
    rig = await make_rig(backend, unit="ct")
    rig.balance.place("0.2002")
    weight = await rig.scale.read_stable(within=2)
    assert (weight.value, weight.unit) == (Decimal("1.0010"), Unit.CARAT)


@pytest.mark.asyncio
async def test_read_now_flags_a_settling_load_dynamic(make_rig: MakeRig, backend: str) -> None:
    rig = await make_rig(backend)
    rig.balance.settle_s = 5.0
    rig.balance.place("4")
    assert not (await rig.scale.read_now()).stable


@pytest.mark.asyncio
async def test_zero_and_tare(make_rig: MakeRig, backend: str) -> None:
    rig = await make_rig(backend)
    rig.balance.place("0.0021")  # drift on an empty pan
    await asyncio.sleep(0.15)
    await rig.scale.zero(within=2)
    assert (await rig.scale.read_stable(within=2)).value == 0
    rig.balance.place("1.5021")  # a tray
    tare = await rig.scale.tare(within=2)
    assert tare.value == Decimal("1.5")
    rig.balance.place("1.7521")  # tray and ring
    assert (await rig.scale.read_stable(within=2)).value == Decimal("0.25")


@pytest.mark.asyncio
async def test_a_scale_that_never_settles(make_rig: MakeRig, backend: str) -> None:
    rig = await make_rig(backend)
    rig.balance.never_settles = True
    rig.balance.place("3")
    with pytest.raises(DeviceTimeoutError, match="never settled") as caught:
        await rig.scale.read_stable(within=0.5)
    assert caught.value.retryable
    rig.balance.never_settles = False  # clear state: the next reading is right
    rig.balance.place("3")
    assert (await rig.scale.read_stable(within=2)).value == 3


@pytest.mark.asyncio
async def test_overload_is_reported_by_name(make_rig: MakeRig, backend: str) -> None:
    rig = await make_rig(backend)
    rig.balance.place("500")
    with pytest.raises(DeviceReportedError, match="overload") as caught:
        await rig.scale.read_stable(within=2)
    assert not caught.value.retryable
    rig.balance.place("1")
    assert (await rig.scale.read_stable(within=2)).value == 1


@pytest.mark.asyncio
async def test_garbage_bytes_end_in_a_clear_state(make_rig: MakeRig, backend: str) -> None:
    rig = await make_rig(backend)
    rig.balance.place("2")
    await asyncio.sleep(0.15)
    rig.simulator.corrupt_replies(1)
    try:
        first = await rig.scale.read_stable(within=2)
        assert first.value == 2  # a stream skips a bad line
    except DeviceProtocolError:
        pass  # a command protocol reports it and resets the balance
    assert (await rig.scale.read_stable(within=2)).value == 2


@pytest.mark.asyncio
async def test_unplug_mid_read_then_replug(make_rig: MakeRig, backend: str) -> None:
    rig = await make_rig(backend)
    rig.balance.settle_s = 5.0
    rig.balance.place("8")
    reading = asyncio.create_task(rig.scale.read_stable(within=3))
    await asyncio.sleep(0.2)
    rig.simulator.unplug()
    with pytest.raises(DeviceUnavailableError):
        await reading
    assert rig.scale.state is ScaleState.DISCONNECTED
    rig.balance.settle_s = 0.1
    rig.simulator.replug()  # a new pty behind the same symlink
    assert (await rig.scale.read_stable(within=2)).value == 8
    assert rig.scale.state is ScaleState.READY


@pytest.mark.asyncio
async def test_another_balance_after_replug_is_refused(make_rig: MakeRig, backend: str) -> None:
    rig = await make_rig(backend)
    if not rig.identifies:
        pytest.skip(f"{backend}: the stream carries no serial number (declared identity)")
    rig.simulator.unplug()
    rig.balance.serial_number = "OTHER-0001"
    rig.simulator.replug()
    with pytest.raises(WrongScaleError, match="not the same scale") as caught:
        await rig.scale.reconnect(within=2)
    assert not caught.value.retryable
    assert rig.scale.state is ScaleState.WRONG_DEVICE
    with pytest.raises(DeviceError, match="refused"):
        await rig.scale.read_stable(within=1)
