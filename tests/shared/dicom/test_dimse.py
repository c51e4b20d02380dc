"""The DIMSE command sets the relay encodes itself are the bytes pynetdicom would send."""

from __future__ import annotations

from io import BytesIO

import pytest
from pynetdicom.dimse_messages import C_STORE_RQ, C_STORE_RSP
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

from relay_shared.dicom import dimse

UIDS = pytest.mark.parametrize("sop_instance", ["1.2.3.4", "1.2.3.45"])  # even, odd length
MESSAGE_IDS = pytest.mark.parametrize("message_id", [1, 65535])


def pynetdicom_command(message: C_STORE_RQ | C_STORE_RSP, primitive: C_STORE) -> bytes:
    message.primitive_to_message(primitive)
    encoded = encode(message.command_set, True, True)
    assert encoded is not None
    return encoded


@UIDS
@MESSAGE_IDS
def test_the_store_request_is_pynetdicoms(sop_instance: str, message_id: int) -> None:
    request = C_STORE()
    request.MessageID = message_id
    request.AffectedSOPClassUID = CTImageStorage
    request.AffectedSOPInstanceUID = sop_instance
    request.Priority = dimse.LOW_PRIORITY
    request.DataSet = BytesIO(b"x")
    expected = pynetdicom_command(C_STORE_RQ(), request)
    assert dimse.store_request(message_id, CTImageStorage, sop_instance) == expected


@UIDS
@MESSAGE_IDS
@pytest.mark.parametrize("status", [0x0000, 0xA700, 0xB000])
def test_the_store_response_is_pynetdicoms(sop_instance: str, message_id: int,
                                           status: int) -> None:
    response = C_STORE()
    response.MessageIDBeingRespondedTo = message_id
    response.AffectedSOPClassUID = CTImageStorage
    response.AffectedSOPInstanceUID = sop_instance
    response.Status = status
    expected = pynetdicom_command(C_STORE_RSP(), response)
    assert dimse.store_response(message_id, CTImageStorage, sop_instance, status) == expected


@pytest.mark.parametrize("length", [0, 1, 9, 10, 11, 30])
def test_fragments_cover_the_payload_and_only_the_last_is_flagged(length: int) -> None:
    payload = memoryview(bytes(range(length)))
    parts = list(dimse.fragments(5, dimse.DATA, payload, 10))
    assert b"".join(bytes(part) for *_, part in parts) == bytes(payload)
    assert [control for _, control, _ in parts] == [0] * (len(parts) - 1) + [dimse.LAST]
    assert all(len(part) <= 10 for *_, part in parts)


@pytest.mark.parametrize("comment", [None, "disk full", "odd"])
def test_a_store_response_reads_back_what_pynetdicom_encoded(comment: str | None) -> None:
    response = C_STORE()
    response.MessageIDBeingRespondedTo = 42
    response.AffectedSOPClassUID = CTImageStorage
    response.AffectedSOPInstanceUID = "1.2.3.45"
    response.Status = 0xA700
    response.ErrorComment = comment
    answer = dimse.read_store_response(pynetdicom_command(C_STORE_RSP(), response))
    assert answer == dimse.StoreAnswer(42, 0xA700, CTImageStorage, "1.2.3.45", comment)


def test_anything_but_a_plain_store_response_is_left_to_pynetdicom() -> None:
    request = dimse.store_request(1, CTImageStorage, "1.2.3.4")
    response = dimse.store_response(1, CTImageStorage, "1.2.3.4", 0)
    assert dimse.read_store_response(request) is None  # a request, not a response
    assert dimse.read_store_response(response[:-3]) is None  # cut short
    assert dimse.read_store_response(b"\x08\x00" + response[2:]) is None  # not group 0
    assert dimse.read_store_response(response) is not None
