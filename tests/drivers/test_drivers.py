"""Drivers: the error tree, the simulators, the registry."""

from __future__ import annotations

import struct
import zlib

import pytest

from drivers.camera.base import PNG_MAGIC, Camera
from drivers.camera.sim import SimCamera
from drivers.errors import (
    DeviceError,
    DeviceProtocolError,
    DeviceReportedError,
    DeviceTimeoutError,
    DeviceUnavailableError,
)
from drivers.laser.base import Laser, LaserJob
from drivers.laser.sim import SimLaser
from drivers.registry import backend_class, backends, open_device


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (DeviceTimeoutError, True),
        (DeviceUnavailableError, True),
        (DeviceProtocolError, False),
        (DeviceReportedError, False),
    ],
)
def test_error_tree_and_retryable(error: type[DeviceError], retryable: bool) -> None:
    assert issubclass(error, DeviceError)
    assert error.retryable is retryable


def test_timeout_is_also_a_builtin_timeout() -> None:
    with pytest.raises(TimeoutError):
        raise DeviceTimeoutError("no answer")


def fast_laser(**options: object) -> SimLaser:
    return SimLaser("laser-1", None, {"seconds_per_char": 0.0, **options})


@pytest.mark.asyncio
async def test_sim_laser_hash_is_deterministic() -> None:
    first = await fast_laser().engrave("Forever yours")
    second = await fast_laser().engrave("Forever yours")
    other = await fast_laser().engrave("Forever yourz")
    assert first.gcode_sha256 == second.gcode_sha256 != other.gcode_sha256
    assert len(first.gcode_sha256) == 64


@pytest.mark.asyncio
async def test_sim_laser_takes_time_per_character() -> None:
    report = await fast_laser(seconds_per_char=0.01).engrave("abcdefghij")
    assert report.duration_s >= 0.09


@pytest.mark.asyncio
async def test_sim_laser_disconnects_mid_job() -> None:
    laser = fast_laser(fault="disconnect_mid_job")
    with pytest.raises(DeviceUnavailableError) as caught:
        await laser.engrave("Anna & Ben")
    assert caught.value.retryable
    assert laser.engrave_count == 1


def test_sim_laser_refuses_unknown_fault() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        fast_laser(fault="melt")


class BrokenLaser(Laser):
    backend = "broken"

    async def _run(self, job: LaserJob) -> None:
        raise RuntimeError("backend bug")


@pytest.mark.asyncio
async def test_unexpected_backend_error_becomes_device_error() -> None:
    with pytest.raises(DeviceError) as caught:
        await BrokenLaser("laser-x", None, {}).engrave("secret text")
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert "secret text" not in str(caught.value)


@pytest.mark.asyncio
async def test_laser_logs_never_contain_the_text(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    await fast_laser().engrave("Private Name")
    assert caplog.records
    assert "Private Name" not in caplog.text


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    assert data.startswith(PNG_MAGIC)
    pos, chunks = len(PNG_MAGIC), {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc
        chunks[kind] = body
        pos += 12 + length
    width, height = struct.unpack(">II", chunks[b"IHDR"][:8])
    return width, height, zlib.decompress(chunks[b"IDAT"])


@pytest.mark.asyncio
async def test_sim_camera_returns_a_valid_png() -> None:
    camera = SimCamera("camera-1", None, {"width": 16, "height": 8})
    first, second = await camera.capture(), await camera.capture()
    width, height, pixels = decode_png(first)
    assert (width, height) == (16, 8)
    assert len(pixels) == height * (1 + width)  # one filter byte per row
    assert first != second  # every frame differs, so proofs are distinct


@pytest.mark.asyncio
async def test_registry_opens_the_simulators() -> None:
    laser = await open_device("laser", "sim", "laser-1", None, {"seconds_per_char": 0})
    camera = await open_device("camera", "sim", "camera-1", None, {})
    assert isinstance(laser, Laser)
    assert isinstance(camera, Camera)
    assert all(backend_class(*key) for key in backends())


def test_registry_names_what_exists() -> None:
    with pytest.raises(KeyError, match="laser/sim"):
        backend_class("laser", "grbl-9000")


def test_drivers_import_nothing_of_ours() -> None:
    import ast
    import pathlib

    import drivers

    root = pathlib.Path(drivers.__file__).parent
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] not in {"agent", "hub", "protocol"}, path
