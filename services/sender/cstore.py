"""The C-STORE requests of a series on one association, each encoded while the peer
is still storing the one before.

pynetdicom's ``send_c_store`` reads the file meta with pydicom, builds and encodes
the request, and hands it to its DUL thread one PDU at a time, all in Python while
the peer has nothing to do; then it waits for the answer while it has nothing to
do. Sending a series that way ran at half the rate of dcmtk's storescu. Here the
next request is encoded into its P-DATA-TF PDUs (PS3.8 9.3.5) while the peer stores
the current one, and goes out in one write. Negotiation, release, abort and reading
the peer's answers stay pynetdicom's.

Over TLS the socket is pynetdicom's DUL thread's alone (an OpenSSL connection is
not for two threads at once), so the encoded fragments go through that thread.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pynetdicom.association import Association
from pynetdicom.pdu_primitives import P_DATA

from relay_shared.deid import header

P_DATA_TF = 0x04
PDU_HEADER = struct.Struct(">BxL")  # PDU type, reserved, length
PDV_HEADER = struct.Struct(">LBB")  # item length, presentation context, control header
PDV_OVERHEAD = PDU_HEADER.size - 2 + PDV_HEADER.size - 4  # 6: what pynetdicom leaves
DATA, COMMAND, LAST = 0x00, 0x01, 0x02
LOW_PRIORITY = 0x0002  # pynetdicom's default for C-STORE
C_STORE_RQ_FIELD = 0x0001
DATASET_PRESENT = 0x0001  # anything but 0x0101
_IMPLICIT_HEADER = struct.Struct("<HHL")
_US = struct.Struct("<H")
_UL = struct.Struct("<L")
FRAGMENT_WHEN_UNLIMITED = 1 << 20


class StoreError(Exception):
    """A request that cannot be encoded or sent; the message names the image."""


@dataclass(frozen=True)
class EncodedRequest:
    message_id: int
    # (presentation context, control header, bytes) in the order they go out
    fragments: list[tuple[int, int, memoryview]]
    wire: bytes  # the fragments as P-DATA-TF PDUs


def encode_request(path: Path, message_id: int, contexts: dict[tuple[str, str], int],
                   max_pdu: int) -> EncodedRequest:
    """The C-STORE-RQ for the file at `path`, its dataset the file's own bytes."""
    data = path.read_bytes()
    try:
        meta, start = header.parse_file_meta(data)
        sop_class, sop_instance, syntax = (
            meta[tag][1].rstrip(b"\x00 ").decode("ascii")
            for tag in (0x00020002, 0x00020003, 0x00020010))
    except (header.Unsupported, KeyError, UnicodeDecodeError) as exc:
        raise StoreError(f"its file meta cannot be read ({exc})") from exc
    context_id = contexts.get((sop_class, syntax))
    if context_id is None:
        raise StoreError(f"the peer accepted no presentation context for SOP class "
                         f"{sop_class} in transfer syntax {syntax}")
    command = command_set(message_id, sop_class, sop_instance)
    size = max_pdu - PDV_OVERHEAD if max_pdu else FRAGMENT_WHEN_UNLIMITED
    fragments = [(context_id, COMMAND | flag, part)
                 for flag, part in _split(memoryview(command), size)]
    fragments += [(context_id, DATA | flag, part)
                  for flag, part in _split(memoryview(data)[start:], size)]
    return EncodedRequest(message_id, fragments, pdus(fragments))


def command_set(message_id: int, sop_class: str, sop_instance: str) -> bytes:
    """The C-STORE-RQ command set (PS3.7 9.3.1.1), implicit VR little endian, in the
    element order pynetdicom writes it. Through pynetdicom's message classes this
    took longer than the peer takes to store a 128 KiB instance."""
    elements = b"".join((
        _element(0x0002, _ui(sop_class)),
        _element(0x0100, _US.pack(C_STORE_RQ_FIELD)),
        _element(0x0110, _US.pack(message_id)),
        _element(0x0700, _US.pack(LOW_PRIORITY)),
        _element(0x0800, _US.pack(DATASET_PRESENT)),
        _element(0x1000, _ui(sop_instance)),
    ))
    return _element(0x0000, _UL.pack(len(elements))) + elements


def _ui(uid: str) -> bytes:
    value = uid.encode("ascii")
    return value + b"\x00" if len(value) % 2 else value


def _element(element: int, value: bytes) -> bytes:
    return _IMPLICIT_HEADER.pack(0x0000, element, len(value)) + value


def _split(payload: memoryview, size: int) -> Iterator[tuple[int, memoryview]]:
    """Fragments of at most `size` bytes, the last one flagged LAST."""
    last = max(len(payload) - 1, 0) // size
    for index in range(last + 1):
        yield (LAST if index == last else 0), payload[index * size:(index + 1) * size]


def pdus(fragments: list[tuple[int, int, memoryview]]) -> bytes:
    """Each fragment as a P-DATA-TF PDU holding one PDV, as pynetdicom sends them."""
    out = bytearray()
    for context_id, control, part in fragments:
        out += PDU_HEADER.pack(P_DATA_TF, len(part) + PDV_OVERHEAD)
        out += PDV_HEADER.pack(len(part) + 2, context_id, control)
        out += part
    return bytes(out)


@contextlib.contextmanager
def reactor_paused(assoc: Association) -> Iterator[None]:
    """While paused, pynetdicom's association thread leaves the answers to the caller;
    ``send_c_store`` pauses it the same way around every request."""
    assoc._reactor_checkpoint.clear()
    try:
        while not assoc._is_paused and assoc.is_established:
            time.sleep(0.0001)
        yield
    finally:
        assoc._reactor_checkpoint.set()


class Writer:
    """Puts encoded requests on the wire of an established association."""

    def __init__(self, assoc: Association) -> None:
        self._assoc = assoc
        sock = assoc.dul.socket.socket if assoc.dul.socket is not None else None
        self._direct = sock if isinstance(sock, socket.socket) and not isinstance(
            sock, ssl.SSLSocket) else None

    def write(self, request: EncodedRequest) -> None:
        if self._direct is not None:
            # The DUL thread only reads while the reactor is paused and no primitive is
            # queued, so this thread may write: a plain TCP socket is full duplex.
            self._direct.sendall(request.wire)
            return
        for context_id, control, part in request.fragments:
            primitive = P_DATA()
            primitive.presentation_data_value_list.append(
                (context_id, bytes([control]) + bytes(part)))
            self._assoc.dul.send_pdu(primitive)
