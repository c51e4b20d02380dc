"""What a hostile peer or file does to the relay: oversized PDUs and deflate bombs.

Loopback only, and bounded: a stream stops at its budget or when the relay closes."""

from __future__ import annotations

import socket
import struct
import zlib
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID
from pynetdicom.pdu import A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    MaximumLengthNotification,
)
from pynetdicom.presentation import build_context

A_ASSOCIATE_RQ_TYPE = 0x01
P_DATA_TF_TYPE = 0x04
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MIB = 1024 * 1024


def associate_rq(calling: str, called: str, abstract_syntax: str = "1.2.840.10008.1.1") -> bytes:
    """An A-ASSOCIATE-RQ PDU proposing one context, as any requestor would send it."""
    primitive = A_ASSOCIATE()
    primitive.application_context_name = "1.2.840.10008.3.1.1.1"
    primitive.calling_ae_title = calling
    primitive.called_ae_title = called
    length = MaximumLengthNotification()
    length.maximum_length_received = 16384
    implementation = ImplementationClassUIDNotification()
    implementation.implementation_class_uid = PYNETDICOM_IMPLEMENTATION_UID
    primitive.user_information = [length, implementation]
    context = build_context(abstract_syntax)
    context.context_id = 1
    primitive.presentation_context_definition_list = [context]
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(primitive)
    return pdu.encode()


def pdu_header(pdu_type: int, length: int) -> bytes:
    return struct.pack(">BBL", pdu_type, 0, length)


def stream_until_closed(port: int, preface: bytes, header: bytes, budget: int,
                        timeout: float = 30.0) -> int:
    """Send ``preface`` and a PDU header, then zeros as its body until ``budget`` bytes
    are sent or the relay closes. Returns the zeros sent."""
    sent = 0
    chunk = bytes(MIB)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(preface + header)
            while sent < budget:
                sent += sock.send(chunk[:min(MIB, budget - sent)])
        except (BrokenPipeError, ConnectionResetError):
            pass
    return sent


def closed_without_reading(port: int, preface: bytes, header: bytes,
                           timeout: float = 5.0) -> bool:
    """Send ``preface`` and a PDU header, then a little of its body: whether the relay
    closes the connection (rather than waiting for the rest) within ``timeout``."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(preface + header + bytes(64 * 1024))
            while sock.recv(65536):
                pass  # an A-ASSOCIATE-RJ may come first
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
    return True


def deflate_bomb(path: Path, inflated_bytes: int, series_uid: str | None = None) -> Path:
    """A deflated CT instance whose pixel data is ``inflated_bytes`` of zeros: about a
    thousandth of that on disk."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    meta.ImplementationClassUID = PYNETDICOM_IMPLEMENTATION_UID
    header = Dataset()
    header.SOPClassUID = CT_IMAGE_STORAGE
    header.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    header.StudyInstanceUID = generate_uid()
    header.SeriesInstanceUID = series_uid or generate_uid()
    header.Modality = "CT"
    header.PatientID = "BOMB-1"
    encoded = DicomBytesIO()
    encoded.is_little_endian, encoded.is_implicit_VR = True, False
    write_dataset(encoded, header)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = bytes(16 * MIB)
    with open(path, "wb") as out:
        out.write(b"\x00" * 128 + b"DICM")
        write_file_meta_info(out, meta)  # type: ignore[arg-type]
        out.write(deflater.compress(encoded.getvalue()))
        out.write(deflater.compress(struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0,
                                                inflated_bytes)))
        left = inflated_bytes
        while left:
            out.write(deflater.compress(zeros[:min(left, len(zeros))]))
            left -= min(left, len(zeros))
        out.write(deflater.flush())
    return path
