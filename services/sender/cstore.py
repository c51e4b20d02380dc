"""The C-STORE requests of a series on one association, each encoded while the peer
is still storing the one before.

pynetdicom's ``send_c_store`` reads the file meta with pydicom, builds and encodes
the request, and hands it to its DUL thread one PDU at a time, all in Python while
the peer has nothing to do; then it waits for the answer while it has nothing to
do. Sending a series that way ran at half the rate of dcmtk's storescu. Here the
next request is encoded into its P-DATA-TF PDUs (PS3.8 9.3.5) while the peer stores
the current one, and goes out in one write. Negotiation, release and abort stay
pynetdicom's; its thread still reads the peer's answers, which the relay decodes
itself (``relay_shared.dimse``).

Over TLS the socket is pynetdicom's DUL thread's alone (an OpenSSL connection is
not for two threads at once), so the encoded fragments go through that thread.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pynetdicom.association import Association
from pynetdicom.pdu_primitives import P_DATA

from relay_shared import dimse
from relay_shared.deid import header
from relay_shared.reasons import RelayError

FRAGMENT_WHEN_UNLIMITED = 1 << 20


class StoreError(RelayError):
    """A request that cannot be encoded or sent; the message names the image."""


@dataclass(frozen=True)
class EncodedRequest:
    message_id: int
    # (presentation context, control header, bytes) in the order they go out
    fragments: list[dimse.Fragment]
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
        raise StoreError(f"its file meta cannot be read ({type(exc).__name__})") from exc
    context_id = contexts.get((sop_class, syntax))
    if context_id is None:
        raise StoreError(f"the peer accepted no presentation context for SOP class "
                         f"{sop_class} in transfer syntax {syntax}")
    command = dimse.store_request(message_id, sop_class, sop_instance)
    size = max_pdu - dimse.PDV_OVERHEAD if max_pdu else FRAGMENT_WHEN_UNLIMITED
    parts = [*dimse.fragments(context_id, dimse.COMMAND, memoryview(command), size),
             *dimse.fragments(context_id, dimse.DATA, memoryview(data)[start:], size)]
    return EncodedRequest(message_id, parts, dimse.pdus(parts))


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


def read_answers_directly(assoc: Association) -> None:
    """Have plain C-STORE responses read by the relay's decoder and queued as they are
    (a ``dimse.StoreAnswer``); anything else goes through pynetdicom as before.
    pynetdicom decodes every response into a pydicom Dataset first, on the DUL thread,
    while the peer waits for the next request."""
    provider = assoc.dimse
    receive = provider.receive_primitive

    def receive_answer(primitive: P_DATA) -> None:
        values = primitive.presentation_data_value_list
        if provider.message is None and len(values) == 1:
            context_id, value = values[0]
            if value[:1] == bytes([dimse.COMMAND | dimse.LAST]):
                answer = dimse.read_store_response(value[1:])
                if answer is not None:
                    provider.msg_queue.put((context_id, answer))  # type: ignore[arg-type]
                    return
        receive(primitive)

    provider.receive_primitive = receive_answer  # type: ignore[method-assign]


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
