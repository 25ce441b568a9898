"""`benchfleet devices scan`: each simulator on its own real pty is named by its handshake."""

from __future__ import annotations

import os
import tty
from collections.abc import Iterator

import pytest

from drivers.cleaner.config import load_cleaner_config
from drivers.cleaner.sim import CleanerSimulator
from drivers.laser.grbl.sim import GrblSimulator
from drivers.pty_sim import PtySimulator
from drivers.scale.sim import MtSicsSimulator
from drivers.scan import list_serial_ports, probe


@pytest.fixture
def started() -> Iterator[list[PtySimulator]]:
    sims: list[PtySimulator] = []
    yield sims
    for sim in sims:
        sim.stop()


@pytest.mark.parametrize(
    ("make", "family", "model_part"),
    [
        (MtSicsSimulator, "scale", ""),
        (lambda: GrblSimulator(speedup=1000), "laser", "Grbl 1.1"),
        (
            lambda: CleanerSimulator(load_cleaner_config("generic-relay-pt100").registers),
            "cleaner",
            "",
        ),
    ],
    ids=["mtsics", "grbl", "modbus-cleaner"],
)
@pytest.mark.asyncio
async def test_probe_names_what_answers(
    started: list[PtySimulator], make: object, family: str, model_part: str
) -> None:
    sim = make()  # type: ignore[operator]
    started.append(sim)
    result = await probe(sim.start(), within=3)
    assert (result.family, result.port) == (family, sim.port), result
    assert model_part in result.model


@pytest.mark.asyncio
async def test_a_silent_port_is_nobody() -> None:
    master, slave = os.openpty()  # a tty where nothing answers
    tty.setraw(slave)
    try:
        result = await probe(os.ttyname(slave), within=0.5)
    finally:
        os.close(master)
        os.close(slave)
    assert result.family == ""
    assert "scale/mtsics" in result.detail
    assert "laser/grbl" in result.detail


def test_listing_is_passive_and_typed() -> None:
    for port in list_serial_ports():  # none on a CI machine, some on a station PC
        assert port.device
        assert port.usb_id == "" or len(port.usb_id) == 9
