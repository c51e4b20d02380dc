"""Any DICOM AE by C-STORE (pynetdicom SCU), receipt proved by a C-FIND at IMAGE level.

One association per series. Its presentation contexts are the series' own
(SOP class, transfer syntax) pairs, one context each, so every file is sent in
the encoding it is stored in: the bytes after the file meta go out unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.filereader import read_file_meta_info
from pynetdicom import AE, _config, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
)

from relay_sender.destinations import DestinationError, OutgoingInstance, OutgoingSeries
from relay_shared import tlsconfig
from relay_shared.dicomnet import tune_connection

log = logging.getLogger(__name__)
# pynetdicom's INFO lines print query identifiers and other dataset values.
logging.getLogger("pynetdicom").setLevel(logging.WARNING)

# Send a file path as its encoded bytes instead of decoding and re-encoding it.
# Process-wide, and what every C-STORE of this process wants.
_config.STORE_SEND_CHUNKED_DATASET = True

MAX_CONTEXTS = 128
# Success, and the warnings that still mean "stored" (coercion, elements discarded).
STORED = {0x0000, 0xB000, 0xB006, 0xB007}
PENDING = {0xFF00, 0xFF01}
def presentation_contexts(paths: list[Path]) -> list[tuple[str, str]]:
    pairs = set()
    for path in paths:
        meta = read_file_meta_info(path)
        pairs.add((str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID)))
    return sorted(pairs)


class DicomDestination:
    name = "dicom"

    def __init__(self, host: str, port: int, called_ae: str, calling_ae: str = "RELAY",
                 timeout: float = 30.0, tls: tlsconfig.ClientTls | None = None) -> None:
        self._address = (host, port)
        self._tls = tls  # fresh tls_args per association, None for plain DICOM
        self._called_ae = called_ae
        self._calling_ae = calling_ae
        self._timeout = timeout

    def _ae(self, contexts: list[tuple[str, list[str]]]) -> AE:
        ae = AE(ae_title=self._calling_ae)
        for abstract, syntaxes in contexts:
            ae.add_requested_context(abstract, syntaxes)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self._timeout
        ae.connection_timeout = self._timeout
        return ae

    @contextlib.contextmanager
    def _association(self, contexts: list[tuple[str, list[str]]]) -> Iterator[Association]:
        host, port = self._address
        connected = threading.Event()

        def on_open(event: evt.Event) -> None:
            connected.set()
            tune_connection(event)

        tls_args = self._tls() if self._tls else None
        assoc = self._ae(contexts).associate(host, port, ae_title=self._called_ae,
                                             evt_handlers=[(evt.EVT_CONN_OPEN, on_open)],
                                             tls_args=tls_args)
        if not assoc.is_established:
            refused = tlsconfig.failure_of(tls_args)
            raise DestinationError(self._where() + f": {refused}" if refused
                                   else self._refusal(assoc, connected.is_set()))
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()

    def _where(self) -> str:
        return f"DICOM AE {self._called_ae} at {self._address[0]}:{self._address[1]}"

    def _refusal(self, assoc: Association, connected: bool) -> str:
        where = self._where()
        if not connected:
            return f"{where} could not be reached (connection refused or timed out)"
        if assoc.is_rejected:
            return f"{where} refused the association"
        if assoc.is_aborted:
            # Under TLS 1.3 a server refuses a client certificate only after the handshake.
            hint = " (over TLS: it may have refused the relay's client certificate, " \
                "RELAY_DICOM_TLS_CERT)" if self._tls else ""
            return f"{where} aborted the association{hint}"
        return f"{where} did not answer the association request in time"

    def send(self, series: OutgoingSeries) -> None:
        pairs = presentation_contexts([i.path for i in series.instances])
        if len(pairs) > MAX_CONTEXTS:
            raise DestinationError(f"series {series.series_id} needs {len(pairs)} presentation "
                                   f"contexts; one association carries {MAX_CONTEXTS}")
        with self._association([(sop, [ts]) for sop, ts in pairs]) as assoc:
            for instance in series.instances:
                self._store(assoc, instance)

    def _store(self, assoc: Association, instance: OutgoingInstance) -> None:
        status = assoc.send_c_store(instance.path)
        code = int(status.Status) if "Status" in status else None
        if code is None:
            raise DestinationError(f"DICOM AE {self._called_ae} gave no answer for image "
                                   f"{instance.image_id} (timeout or association lost)")
        if code not in STORED:
            raise DestinationError(f"DICOM AE {self._called_ae} rejected image "
                                   f"{instance.image_id}: status 0x{code:04X}")

    def missing(self, series: OutgoingSeries) -> set[str]:
        return {i.sop_instance_uid for i in series.instances} - self.held(series)

    def held(self, series: OutgoingSeries) -> set[str]:
        """The SOPInstanceUIDs the AE reports for the series, by C-FIND at IMAGE level."""
        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.StudyInstanceUID = series.study_instance_uid
        query.SeriesInstanceUID = series.series_instance_uid
        query.SOPInstanceUID = ""
        model = StudyRootQueryRetrieveInformationModelFind
        held: set[str] = set()
        with self._association([(model, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])]) as assoc:
            for status, identifier in assoc.send_c_find(query, model):
                code = int(status.Status) if "Status" in status else None
                if code in PENDING and identifier is not None:
                    held.add(str(identifier.get("SOPInstanceUID", "")))
                elif code != 0x0000:
                    raise DestinationError(self._find_failure(code))
        return held

    def _find_failure(self, code: int | None) -> str:
        if code is None:
            return f"DICOM AE {self._called_ae} gave no answer to the C-FIND (timeout)"
        return f"DICOM AE {self._called_ae} refused the C-FIND: status 0x{code:04X}"
