"""Modbus RTU framing for the simulator side: CRC-16, frames, and request lengths.

The driver lets pymodbus frame its requests; the simulator stands for a relay board's firmware,
so it frames on its own (and can break frames on purpose). RTU has no delimiter: a slave finds
a request's end from its function code, which is what :func:`request_length` does.
"""

from __future__ import annotations

import struct

CRC_INIT = 0xFFFF
CRC_POLY_REFLECTED = 0xA001  # Modbus CRC-16 (IBM/ANSI 0x8005, bit-reversed)

READ_COILS = 0x01
READ_DISCRETE_INPUTS = 0x02
READ_HOLDING_REGISTERS = 0x03
READ_INPUT_REGISTERS = 0x04
WRITE_SINGLE_COIL = 0x05
WRITE_SINGLE_REGISTER = 0x06
WRITE_MULTIPLE_COILS = 0x0F
WRITE_MULTIPLE_REGISTERS = 0x10

ILLEGAL_FUNCTION = 0x01
ILLEGAL_DATA_ADDRESS = 0x02
ILLEGAL_DATA_VALUE = 0x03

FIXED_REQUEST_LENGTH = 8  # unit, function, 2 x u16, CRC
_FIXED_LENGTH_FUNCTIONS = frozenset(
    {
        READ_COILS,
        READ_DISCRETE_INPUTS,
        READ_HOLDING_REGISTERS,
        READ_INPUT_REGISTERS,
        WRITE_SINGLE_COIL,
        WRITE_SINGLE_REGISTER,
    }
)
_BYTE_COUNT_FUNCTIONS = frozenset({WRITE_MULTIPLE_COILS, WRITE_MULTIPLE_REGISTERS})
_BYTE_COUNT_OFFSET = 6  # unit, function, address u16, quantity u16, then the byte count


class FrameError(ValueError):
    """Bytes that are not a whole, intact RTU frame."""


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ CRC_POLY_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """The Modbus CRC-16 of ``data`` as an integer (sent low byte first)."""
    crc = CRC_INIT
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


def encode_frame(unit: int, pdu: bytes) -> bytes:
    """``unit`` + ``pdu`` + CRC (little-endian, as the wire carries it)."""
    if not 0 <= unit <= 0xFF:
        raise ValueError(f"unit id {unit} out of range 0..255")
    body = bytes([unit]) + pdu
    return body + struct.pack("<H", crc16(body))


def decode_frame(frame: bytes) -> tuple[int, bytes]:
    """``(unit, pdu)`` of one whole frame; :class:`FrameError` when short or the CRC is wrong."""
    if len(frame) < 4:
        raise FrameError(f"frame of {len(frame)} bytes is shorter than 4")
    body, (crc,) = frame[:-2], struct.unpack("<H", frame[-2:])
    if crc16(body) != crc:
        raise FrameError(f"CRC mismatch: got {crc:#06x}, computed {crc16(body):#06x}")
    return body[0], body[1:]


def request_length(buffer: bytes) -> int | None:
    """How long the request at the start of ``buffer`` is; ``None`` when more bytes are needed.

    Raises :class:`FrameError` for a function code this slave does not frame (the caller drops a
    byte and hunts for the next frame, as real slaves resync on line noise).
    """
    if len(buffer) < 2:
        return None
    function = buffer[1]
    if function in _FIXED_LENGTH_FUNCTIONS:
        return FIXED_REQUEST_LENGTH
    if function in _BYTE_COUNT_FUNCTIONS:
        if len(buffer) <= _BYTE_COUNT_OFFSET:
            return None
        return _BYTE_COUNT_OFFSET + 1 + buffer[_BYTE_COUNT_OFFSET] + 2
    raise FrameError(f"unknown function code {function:#04x}")


def split_requests(
    buffer: bytes, *, silence: bool = False
) -> tuple[list[tuple[int, bytes]], bytes, int]:
    """Whole requests in ``buffer``: ``(frames, rest, dropped_bytes)``.

    A byte that cannot start a valid frame is dropped, so noise never blocks the frames after
    it. Noise can also look like the start of a long frame; RTU ends a frame with 3.5 characters
    of silence, so with ``silence=True`` (the line went quiet) an unfinished frame is noise too.
    """
    frames: list[tuple[int, bytes]] = []
    dropped = 0
    while buffer:
        length = _frame_length(buffer)
        if length is None and not silence:
            break  # the rest of the frame is still on the wire
        frame = _decoded_or_none(buffer[:length]) if length else None
        if frame is None:
            buffer, dropped = buffer[1:], dropped + 1
            continue
        frames.append(frame)
        buffer = buffer[length:]
    return frames, buffer, dropped


def _frame_length(buffer: bytes) -> int | None:
    """The whole frame's length, 0 when it cannot start a frame, None when it is unfinished."""
    try:
        length = request_length(buffer)
    except FrameError:
        return 0
    return None if length is None or len(buffer) < length else length


def _decoded_or_none(frame: bytes) -> tuple[int, bytes] | None:
    try:
        return decode_frame(frame)
    except FrameError:
        return None


def exception_pdu(function: int, code: int) -> bytes:
    """A Modbus exception reply: the function code with its top bit set, then the code."""
    return bytes([function | 0x80, code])
