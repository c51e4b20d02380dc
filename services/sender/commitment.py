"""The ``dicom`` destination with receipt proved by storage commitment (PS3.4 Annex J,
Push Model) instead of a C-FIND.

After the C-STOREs, one N-ACTION asks the AE to commit to every instance of the
series; the AE answers later, as most do (Orthanc, IHE RAD-10), with an
N-EVENT-REPORT on an association it opens to the relay's commitment listener (the
AE must know the relay's AE title at that host and port). Only the instances the
report names as committed count as held: a failed or missing one is resent, and
nothing is cleaned up until the report arrives. No report within the timeout is a
retryable error.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]

from relay_sender.destinations import DestinationError, OutgoingSeries
from relay_sender.dicom_ae import DicomDestination, read_file_meta
from relay_shared import tlsconfig

log = logging.getLogger(__name__)
# The well-known SOP Instance of the Storage Commitment Push Model (PS3.4 J.3.5).
PUSH_MODEL_INSTANCE = "1.2.840.10008.1.20.1.1"
REQUEST_COMMITMENT = 1
TRANSFER_SYNTAXES = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]


@dataclass
class Pending:
    arrived: threading.Event = field(default_factory=threading.Event)
    committed: set[str] = field(default_factory=set)


class CommitmentListener:
    """Receives N-EVENT-REPORTs from one AE and hands each to the request waiting for
    its transaction."""

    def __init__(self, ae_title: str, host: str, port: int, peer_ae: str) -> None:
        self._address = (host, port)
        self._ae = AE(ae_title=ae_title)
        # The reporting AE opens the association as the SCP of the Push Model.
        self._ae.add_supported_context(StorageCommitmentPushModel, TRANSFER_SYNTAXES,
                                       scu_role=False, scp_role=True)
        self._ae.require_called_aet = True
        self._ae.require_calling_aet = [peer_ae]
        self._lock = threading.Lock()
        self._pending: dict[str, Pending] = {}
        self._server: object | None = None

    def start(self) -> None:
        if self._server is None:
            self._server = self._ae.start_server(
                self._address, block=False,
                evt_handlers=[(evt.EVT_N_EVENT_REPORT, self._on_report)])

    def expect(self, transaction: str) -> Pending:
        with self._lock:
            return self._pending.setdefault(transaction, Pending())

    def forget(self, transaction: str) -> None:
        with self._lock:
            self._pending.pop(transaction, None)

    def _on_report(self, event: evt.Event) -> tuple[int, None]:
        info = event.event_information
        with self._lock:
            pending = self._pending.get(str(info.get("TransactionUID", "")))
        if pending is None:
            return 0x0000, None  # a late report of an attempt given up: nothing waits
        pending.committed = {str(item.ReferencedSOPInstanceUID)
                             for item in info.get("ReferencedSOPSequence", [])}
        pending.arrived.set()
        return 0x0000, None

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()  # type: ignore[attr-defined]
            self._server = None


class CommittedDicomDestination(DicomDestination):
    def __init__(self, host: str, port: int, called_ae: str, calling_ae: str = "RELAY",
                 timeout: float = 30.0, tls: tlsconfig.ClientTls | None = None, *,
                 listen_host: str = "127.0.0.1", listen_port: int = 11113,
                 commitment_timeout: float = 120.0) -> None:
        super().__init__(host, port, called_ae, calling_ae, timeout, tls)
        self._listener = CommitmentListener(calling_ae, listen_host, listen_port, called_ae)
        self._commitment_timeout = commitment_timeout

    def held(self, series: OutgoingSeries) -> set[str]:
        """The instances of the series the AE commits to, by N-ACTION and its report."""
        self._listener.start()
        transaction = generate_uid()
        pending = self._listener.expect(transaction)
        try:
            self._request(series, transaction)
            if not pending.arrived.wait(self._commitment_timeout):
                raise DestinationError(f"DICOM AE {self._called_ae} sent no storage "
                                       f"commitment report within "
                                       f"{self._commitment_timeout:.0f}s")
            return pending.committed & {i.sop_instance_uid for i in series.instances}
        finally:
            self._listener.forget(transaction)

    def _request(self, series: OutgoingSeries, transaction: str) -> None:
        request = Dataset()
        request.TransactionUID = transaction
        request.ReferencedSOPSequence = [_reference(i.path, i.sop_instance_uid)
                                         for i in series.instances]
        with self._association([(StorageCommitmentPushModel, TRANSFER_SYNTAXES)]) as assoc:
            status, _reply = assoc.send_n_action(request, REQUEST_COMMITMENT,
                                                 StorageCommitmentPushModel,
                                                 PUSH_MODEL_INSTANCE)
        code = int(status.Status) if status is not None and "Status" in status else None
        if code != 0x0000:
            said = "no answer" if code is None else f"status 0x{code:04X}"
            raise DestinationError(f"DICOM AE {self._called_ae} refused the storage "
                                   f"commitment request: {said}")

    def close(self) -> None:
        self._listener.stop()


def _reference(path: Path, sop_instance_uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = read_file_meta(path)[0x00020002]
    item.ReferencedSOPInstanceUID = sop_instance_uid
    return item
