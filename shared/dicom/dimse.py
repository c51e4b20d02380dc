"""The DIMSE messages the relay sends most, encoded without pynetdicom's message classes.

A C-STORE request goes out for every instance the relay sends and a C-STORE response
for every instance it receives. Building either through pynetdicom's message classes
(a pydicom Dataset per command, each value validated and encoded in Python) cost more
than storing a small instance. These encoders write the same bytes (tested against
pynetdicom's), for the plain cases; anything else is left to pynetdicom.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

P_DATA_TF = 0x04
PDU_HEADER = struct.Struct(">BxL")  # PDU type, reserved, length
PDV_HEADER = struct.Struct(">LBB")  # item length, presentation context, control header
PDV_OVERHEAD = PDU_HEADER.size - 2 + PDV_HEADER.size - 4  # 6, as pynetdicom counts it
DATA, COMMAND, LAST = 0x00, 0x01, 0x02
LOW_PRIORITY = 0x0002  # pynetdicom's default for C-STORE
C_STORE_RQ, C_STORE_RSP = 0x0001, 0x8001
DATASET_PRESENT, NO_DATASET = 0x0001, 0x0101
_IMPLICIT_HEADER = struct.Struct("<HHL")
_US = struct.Struct("<H")
_UL = struct.Struct("<L")

Fragment = tuple[int, int, memoryview]  # presentation context, control header, bytes


def store_request(message_id: int, sop_class: str, sop_instance: str) -> bytes:
    """The C-STORE-RQ command set (PS3.7 9.3.1.1), implicit VR little endian, in the
    element order pynetdicom writes it."""
    return _command((0x0002, _ui(sop_class)), (0x0100, _US.pack(C_STORE_RQ)),
                    (0x0110, _US.pack(message_id)), (0x0700, _US.pack(LOW_PRIORITY)),
                    (0x0800, _US.pack(DATASET_PRESENT)), (0x1000, _ui(sop_instance)))


def store_response(responding_to: int, sop_class: str, sop_instance: str,
                   status: int) -> bytes:
    """The C-STORE-RSP command set (PS3.7 9.3.1.2) without error comment or offending
    element."""
    return _command((0x0002, _ui(sop_class)), (0x0100, _US.pack(C_STORE_RSP)),
                    (0x0120, _US.pack(responding_to)), (0x0800, _US.pack(NO_DATASET)),
                    (0x0900, _US.pack(status)), (0x1000, _ui(sop_instance)))


def _command(*elements: tuple[int, bytes]) -> bytes:
    body = b"".join(_IMPLICIT_HEADER.pack(0x0000, element, len(value)) + value
                    for element, value in elements)
    return _IMPLICIT_HEADER.pack(0x0000, 0x0000, 4) + _UL.pack(len(body)) + body


def _ui(uid: str) -> bytes:
    value = uid.encode("ascii")
    return value + b"\x00" if len(value) % 2 else value


def fragments(context_id: int, control: int, payload: memoryview,
              size: int) -> Iterator[Fragment]:
    """PDVs of at most `size` bytes, the last one flagged LAST."""
    last = max(len(payload) - 1, 0) // size
    for index in range(last + 1):
        yield (context_id, control | (LAST if index == last else 0),
               payload[index * size:(index + 1) * size])


def pdus(parts: list[Fragment]) -> bytes:
    """Each fragment as a P-DATA-TF PDU holding one PDV, as pynetdicom sends them."""
    out = bytearray()
    for context_id, control, part in parts:
        out += PDU_HEADER.pack(P_DATA_TF, len(part) + PDV_OVERHEAD)
        out += PDV_HEADER.pack(len(part) + 2, context_id, control)
        out += part
    return bytes(out)


@dataclass(frozen=True)
class StoreAnswer:
    """What a C-STORE response says."""

    responding_to: int
    status: int
    sop_class: str
    sop_instance: str
    error_comment: str | None


def read_store_response(command: bytes) -> StoreAnswer | None:
    """A C-STORE-RSP command set, or None for anything else or anything unusual (which
    pynetdicom then decodes)."""
    values: dict[int, bytes] = {}
    pos = 0
    try:
        while pos < len(command):
            group, element, length = _IMPLICIT_HEADER.unpack_from(command, pos)
            pos += _IMPLICIT_HEADER.size
            if group != 0x0000 or pos + length > len(command):
                return None
            values[element] = command[pos:pos + length]
            pos += length
        if set(values) - _STORE_RESPONSE_ELEMENTS \
                or _US.unpack(values[0x0100])[0] != C_STORE_RSP \
                or _US.unpack(values[0x0800])[0] != NO_DATASET:
            return None
        comment = values.get(0x0902)
        return StoreAnswer(
            _US.unpack(values[0x0120])[0], _US.unpack(values[0x0900])[0],
            values[0x0002].rstrip(b"\x00 ").decode("ascii"),
            values[0x1000].rstrip(b"\x00 ").decode("ascii"),
            comment.rstrip(b"\x00 ").decode("latin-1") if comment is not None else None)
    except (struct.error, KeyError, UnicodeDecodeError):
        return None


_STORE_RESPONSE_ELEMENTS = {0x0000, 0x0002, 0x0100, 0x0120, 0x0800, 0x0900, 0x0902, 0x1000}
