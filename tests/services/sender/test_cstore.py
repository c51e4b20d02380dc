"""The C-STORE requests the sender encodes itself are the bytes pynetdicom would send."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

from relay_sender import cstore
from relay_shared.dicom import dimse
from tests.support.dicom_factory import Patient, SeriesSpec, write_series


def pynetdicom_request(message_id: int, sop_instance: str, dataset: bytes) -> C_STORE_RQ:
    request = C_STORE()
    request.MessageID = message_id
    request.AffectedSOPClassUID = CTImageStorage
    request.AffectedSOPInstanceUID = sop_instance
    request.Priority = dimse.LOW_PRIORITY
    request.DataSet = BytesIO(dataset)
    message = C_STORE_RQ()
    message.primitive_to_message(request)
    return message


def pdu_of(primitive: object) -> bytes:
    pdu = P_DATA_TF()
    pdu.from_primitive(primitive)
    return pdu.encode()


@pytest.mark.parametrize("max_pdu", [16384, 4000, 0])
def test_the_pdus_on_the_wire_are_pynetdicoms(tmp_path: Path, max_pdu: int) -> None:
    [path] = write_series(SeriesSpec(Patient("MRN-1", "Doe^J"), instances=1, rows=128,
                                     columns=128), tmp_path)
    data = path.read_bytes()
    start = 132 + 12 + int.from_bytes(data[140:144], "little")
    meta = cstore.header.parse_file_meta(data)[0]
    sop_instance = meta[0x00020003][1].rstrip(b"\x00").decode()
    syntax = meta[0x00020010][1].rstrip(b"\x00").decode()
    ours = cstore.encode_request(path, 7, {(CTImageStorage, syntax): 3}, max_pdu)
    message = pynetdicom_request(7, sop_instance, data[start:])
    expected = b"".join(pdu_of(primitive) for primitive in message.encode_msg(3, max_pdu))
    assert ours.wire == expected
    if max_pdu:
        assert all(len(part) + dimse.PDV_OVERHEAD <= max_pdu for *_, part in ours.fragments)


def test_a_file_whose_class_was_not_accepted_names_what_is_missing(tmp_path: Path) -> None:
    [path] = write_series(SeriesSpec(Patient("MRN-1", "Doe^J"), instances=1), tmp_path)
    with pytest.raises(cstore.StoreError, match=f"SOP class {CTImageStorage}"):
        cstore.encode_request(path, 1, {}, 16384)


def test_a_file_without_file_meta_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "bare.dcm"
    path.write_bytes(b"\x08\x00\x16\x00" + b"\x00" * 200)
    with pytest.raises(cstore.StoreError, match="file meta cannot be read"):
        cstore.encode_request(path, 1, {}, 16384)
