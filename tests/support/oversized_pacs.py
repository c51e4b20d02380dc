"""A PACS that answers a C-GET with one ordinary instance and one far larger than the
relay accepts: what a misconfigured or hostile archive can send a collector.

Run in its own process (``python -m tests.support.oversized_pacs PORT MIB``), so that the
memory it needs to send the large instance is not counted against the collector."""

from __future__ import annotations

import sys
from collections.abc import Iterator

from pydicom.dataset import Dataset
from pynetdicom import AE, StoragePresentationContexts, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelGet,
)

from tests.support.dicom_factory import Patient, SeriesSpec, make_instance

FRAME_BYTES = 512 * 512 * 2
SPEC = SeriesSpec(Patient("MRN-6006", "Testperson^Six"), instances=2)


def _instances(large_mib: int) -> list[Dataset]:
    small, large = make_instance(SPEC, 0), make_instance(SPEC, 1)
    frames = max(1, large_mib * 1024 * 1024 // FRAME_BYTES)
    large.Rows = large.Columns = 512
    large.NumberOfFrames = frames
    large.PixelData = bytes(FRAME_BYTES * frames)
    return [small, large]


def serve(port: int, large_mib: int) -> None:
    instances = _instances(large_mib)

    def on_get(_event: evt.Event) -> Iterator[object]:
        yield len(instances)
        for instance in instances:
            yield 0xFF00, instance

    ae = AE(ae_title="OVERSIZED")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet)
    for context in StoragePresentationContexts[:127]:
        ae.add_supported_context(context.abstract_syntax, scu_role=True, scp_role=True)
    ae.maximum_pdu_size = 0  # the sender's largest PDUs: the relay must bound them itself
    server = ae.start_server(("127.0.0.1", port), block=False,
                             evt_handlers=[(evt.EVT_C_GET, on_get)])
    print("ready", flush=True)
    try:
        sys.stdin.read()  # until the test closes our stdin
    finally:
        server.shutdown()


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
