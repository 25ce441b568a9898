"""The RTU codec (CRC-16, framing) and the cleaner's data schemas, with hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from pymodbus.framer import FramerRTU

from drivers.cleaner import rtu
from drivers.cleaner.config import (
    CleanerConfig,
    RegisterMap,
    TemperatureInput,
    load_cleaner_config,
)
from drivers.cleaner.gemstones import ContraindicatedError, Stone, check_stones, contraindications
from drivers.cleaner.program import CleaningProgram

units = st.integers(0, 255)
pdus = st.binary(min_size=1, max_size=64)


def test_crc_of_a_recorded_request() -> None:
    # "read input register 0 of unit 1" as a USB-RS485 sniffer shows it: 01 04 00 00 00 01 31 CA
    assert rtu.encode_frame(1, bytes.fromhex("0400000001")) == bytes.fromhex("010400000001 31CA")


@given(st.binary(max_size=256))
def test_crc_agrees_with_pymodbus(data: bytes) -> None:
    # pymodbus returns the CRC byte-swapped (wire order as a big-endian int)
    assert rtu.crc16(data).to_bytes(2, "little") == FramerRTU.compute_CRC(data).to_bytes(2, "big")


@given(units, pdus)
def test_frames_round_trip(unit: int, pdu: bytes) -> None:
    assert rtu.decode_frame(rtu.encode_frame(unit, pdu)) == (unit, pdu)


@given(units, pdus, st.data())
def test_any_single_bit_flip_is_caught(unit: int, pdu: bytes, data: st.DataObject) -> None:
    frame = bytearray(rtu.encode_frame(unit, pdu))
    bit = data.draw(st.integers(0, len(frame) * 8 - 1))
    frame[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(rtu.FrameError):
        rtu.decode_frame(bytes(frame))


requests = st.tuples(
    st.integers(1, 247),
    st.sampled_from([rtu.READ_COILS, rtu.READ_INPUT_REGISTERS, rtu.WRITE_SINGLE_COIL]),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
)


@given(st.lists(requests, max_size=5), st.binary(max_size=3))
def test_split_finds_every_request_after_noise(
    reqs: list[tuple[int, int, int, int]], noise: bytes
) -> None:
    frames = [
        rtu.encode_frame(u, bytes([f]) + a.to_bytes(2, "big") + v.to_bytes(2, "big"))
        for u, f, a, v in reqs
    ]
    clean, rest, dropped = rtu.split_requests(b"".join(frames))
    assert [rtu.encode_frame(u, p) for u, p in clean] == frames
    assert (rest, dropped) == (b"", 0)
    # Noise may look like the start of a long frame: only the line's silence ends the hunt.
    noisy, rest, dropped = rtu.split_requests(noise + b"".join(frames), silence=True)
    assert [rtu.encode_frame(u, p) for u, p in noisy] == frames
    assert rest == b""


def test_split_waits_for_the_rest_of_a_frame() -> None:
    frame = rtu.encode_frame(1, bytes.fromhex("0400000001"))
    assert rtu.split_requests(frame[:5]) == ([], frame[:5], 0)


# ---- schemas --------------------------------------------------------------------------------


def test_the_shipped_config_loads_and_names_its_programs() -> None:
    config = load_cleaner_config()
    assert config.registers.coils.by_name() == {"ultrasound": 0, "heater": 1, "degas": 2}
    assert config.program("light-soil").name == "light-soil"
    with pytest.raises(KeyError, match="heavy-soil"):
        config.program("nope")


addresses = st.integers(0, 0xFFFF)


@given(addresses, st.one_of(st.none(), addresses), st.one_of(st.none(), addresses))
def test_register_map_refuses_shared_coils(us: int, heat: int | None, degas: int | None) -> None:
    coils = {"ultrasound": us, "heater": heat, "degas": degas}
    used = [a for a in coils.values() if a is not None]
    data = {"coils": coils, "temperature": {"address": 0}}
    if len(used) == len(set(used)):
        assert RegisterMap.model_validate(data).coils.by_name().keys() <= coils.keys()
    else:
        with pytest.raises(ValidationError, match="share a coil"):
            RegisterMap.model_validate(data)


@given(st.integers(-300, 300).map(lambda n: n / 10))
def test_signed_tenths_round_trip(celsius: float) -> None:
    sensor = TemperatureInput(address=0)
    assert sensor.to_celsius(sensor.to_raw(celsius)) == pytest.approx(celsius)


@given(st.integers())
def test_device_id_must_be_a_unicast_address(device_id: int) -> None:
    data = {"device_id": device_id, "coils": {"ultrasound": 0}, "temperature": {"address": 0}}
    if 1 <= device_id <= 247:
        RegisterMap.model_validate(data)
    else:
        with pytest.raises(ValidationError):
            RegisterMap.model_validate(data)


@pytest.mark.parametrize(
    "bad",
    [
        {"duration_s": 0},
        {"duration_s": 7200},
        {"duration_s": 60, "degas_s": -1},
        {"duration_s": 60, "target_temp_c": 60, "max_temp_c": 60},
        {"duration_s": 60, "max_temp_c": 120},
        {"duration_s": 60, "spin": True},
    ],
)
def test_programs_refuse_out_of_range_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CleaningProgram.model_validate(bad)


def test_a_program_whose_name_disagrees_with_its_key_is_refused() -> None:
    data = load_cleaner_config().model_dump()
    data["programs"]["light-soil"]["name"] = "heavy"
    with pytest.raises(ValidationError, match="calls itself"):
        CleanerConfig.model_validate(data)


# ---- the gemstone gate ----------------------------------------------------------------------


def test_untreated_hard_stones_may_go_in_the_bath() -> None:
    check_stones([Stone(name="Diamond", treatment="none"), Stone(name="ruby", treatment="heated")])


@pytest.mark.parametrize(
    "stone",
    [
        Stone(name="emerald", treatment="none"),  # never
        Stone(name="opal", treatment="none"),
        Stone(name="moonstone", treatment="none"),  # charts conflict: conservative
        Stone(name="diamond"),  # treatment unknown
        Stone(name="sapphire", treatment="filled"),
        Stone(name="sapphire", treatment="none", composite=True),
        Stone(name="unobtainium", treatment="none"),
    ],
)
def test_contraindicated_stones_are_refused(stone: Stone) -> None:
    assert contraindications([stone])
    with pytest.raises(ContraindicatedError) as caught:
        check_stones([Stone(name="diamond", treatment="none"), stone])
    assert not caught.value.retryable
    assert len(caught.value.reasons) == 1
