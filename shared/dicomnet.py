"""What every DICOM association of the relay, accepted or opened, is tuned with."""

from __future__ import annotations

import contextlib
import socket

from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE, DimsePrimitiveType
from pynetdicom.pdu_primitives import P_DATA

from relay_shared.dicom import dimse

DUL_POLL_DELAY = 0.0002


def tune_connection(event: evt.Event) -> None:
    """Without TCP_NODELAY every C-STORE waits for the peer's delayed ACK. pynetdicom's
    reader thread sleeps 1 ms whenever it finds nothing to do, which alone costs a
    few ms per instance; it polls faster while this association is open."""
    sock = event.assoc.dul.socket
    if sock is not None and sock.socket is not None:
        with contextlib.suppress(OSError):
            sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    event.assoc.dul._run_loop_delay = DUL_POLL_DELAY


def encode_store_responses(assoc: Association) -> None:
    """Send this association's plain C-STORE responses encoded by the relay.

    pynetdicom builds each response through its message classes, which cost the SCP
    more than storing a small instance; a response with an error comment or an
    offending element, and every other message, still goes through pynetdicom."""
    send_msg = assoc.dimse.send_msg

    def send(primitive: DimsePrimitiveType, context_id: int) -> None:
        command = _plain_store_response(primitive)
        limit = assoc.dimse.maximum_pdu_size
        if command is None or (limit and len(command) + dimse.PDV_OVERHEAD > limit):
            send_msg(primitive, context_id)
            return
        pdata = P_DATA()
        pdata.presentation_data_value_list.append(
            (context_id, bytes([dimse.COMMAND | dimse.LAST]) + command))
        assoc.dul.send_pdu(pdata)

    assoc.dimse.send_msg = send  # type: ignore[method-assign]


def _plain_store_response(primitive: DimsePrimitiveType) -> bytes | None:
    """The encoded command set of a C-STORE response with nothing but its status."""
    if not isinstance(primitive, C_STORE) or primitive.ErrorComment is not None \
            or primitive.OffendingElement is not None:
        return None
    responding_to, status = primitive.MessageIDBeingRespondedTo, primitive.Status
    sop_class, sop_instance = primitive.AffectedSOPClassUID, primitive.AffectedSOPInstanceUID
    if responding_to is None or status is None or sop_class is None or sop_instance is None:
        return None
    return dimse.store_response(int(responding_to), str(sop_class), str(sop_instance),
                                int(status))
