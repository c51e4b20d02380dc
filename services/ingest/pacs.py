"""The PACS as the collector sees it: C-FIND at study and series level, then C-MOVE to
the relay's own SCP, or C-GET on the same association.

Every request waits its turn at a shared rate limit, so however many rows are in
hand the clinical PACS gets no more than the configured requests per second.
Identifiers and query values are never logged (pynetdicom's INFO lines would).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset
from pynetdicom import AE, StoragePresentationContexts, build_role, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from relay_ingest import receiving
from relay_ingest.origin import OriginSeal, write_origin
from relay_ingest.scp import MAX_PDU, part10_prefix
from relay_shared import dicomfiles, tlsconfig
from relay_shared.dicom.status import (
    CANNOT_UNDERSTAND,
    MEANINGS,
    OUT_OF_RESOURCES,
    PENDING,
    SUCCESS,
    WARNING,
)
from relay_shared.dicomnet import tune_connection
from relay_shared.projects import Arrival, Source

log = logging.getLogger(__name__)
logging.getLogger("pynetdicom").setLevel(logging.WARNING)

# One association carries at most 128 contexts: the retrieve model and the storage classes.
GET_STORAGE_CLASSES = [str(c.abstract_syntax) for c in StoragePresentationContexts[:127]]


class PacsError(Exception):
    """The PACS could not be reached, refused, or answered with a failure status."""


class RateLimit:
    """At most ``rate`` requests per second across every thread of the process."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        time.sleep(max(0.0, start - now))


@dataclass(frozen=True)
class Retrieved:
    completed: int
    failed: int
    warning: int


class Pacs:
    def __init__(self, host: str, port: int, called_ae: str, calling_ae: str, timeout: float,
                 limit: RateLimit, tls: tlsconfig.ClientTls | None = None,
                 limits: dicomfiles.SizeLimits = dicomfiles.DEFAULT_LIMITS,
                 sealer: OriginSeal | None = None) -> None:
        self._address = (host, port)
        self._sealer = sealer  # needed only to retrieve by C-GET into incoming
        self._limits = limits
        self._tls = tls  # fresh tls_args per association; None for plain DICOM
        self._called_ae = called_ae
        self._calling_ae = calling_ae
        self._timeout = timeout
        self._limit = limit

    def _ae(self) -> AE:
        ae = AE(ae_title=self._calling_ae)
        ae.acse_timeout = ae.network_timeout = ae.connection_timeout = self._timeout
        # A retrieve answers only when its last instance is stored: give it time.
        ae.dimse_timeout = self._timeout * 10
        return ae

    @contextlib.contextmanager
    def _association(self, ae: AE, handlers: list | None = None, roles: list | None = None
                     ) -> Iterator[Association]:
        self._limit.wait()
        tls_args = self._tls() if self._tls else None
        assoc = ae.associate(*self._address, ae_title=self._called_ae, ext_neg=roles,
                             evt_handlers=[(evt.EVT_CONN_OPEN, tune_connection),
                                           *(handlers or [])], tls_args=tls_args)
        if not assoc.is_established:
            where = f"PACS {self._called_ae} at {self._address[0]}:{self._address[1]}"
            refused = tlsconfig.failure_of(tls_args)
            raise PacsError(f"{where}: {refused}" if refused
                            else f"{where} refused or did not answer the association")
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()

    def find(self, query: Dataset) -> list[Dataset]:
        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        matches = []
        with self._association(ae) as assoc:
            for status, identifier in assoc.send_c_find(
                    query, StudyRootQueryRetrieveInformationModelFind):
                code = _code(status)
                if code in PENDING and identifier is not None:
                    matches.append(identifier)
                elif code != SUCCESS:
                    raise PacsError(_failure("C-FIND", code))
        return matches

    def move(self, study_uid: str, destination: str) -> Retrieved:
        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
        with self._association(ae) as assoc:
            return _final(assoc.send_c_move(_study(study_uid), destination,
                                            StudyRootQueryRetrieveInformationModelMove), "C-MOVE")

    def get(self, study_uid: str, incoming: Path, name: str) -> Retrieved:
        """C-GET into NAME.tmpXXXX inside incoming, renamed to NAME once complete.

        The PACS is a peer like any other: its PDUs are bounded by the length the relay
        announced, and each instance it sends goes to disk as it arrives, within
        RELAY_MAX_INSTANCE_BYTES, as on the SCP (receiving.py); one over the cap is
        answered Out of Resources and counted as failed by the PACS."""
        ae = self._ae()
        ae.maximum_pdu_size = MAX_PDU
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
        for sop_class in GET_STORAGE_CLASSES:
            ae.add_requested_context(sop_class)
        roles = [build_role(sop_class, scp_role=True) for sop_class in GET_STORAGE_CLASSES]
        if self._sealer is None:
            raise ValueError("a C-GET into incoming needs the relay's origin seal")
        partial = incoming / f"{name}.tmp{uuid.uuid4().hex[:8]}"
        partial.mkdir(parents=True)
        write_origin(partial, Arrival(Source.COLLECT.value), self._sealer)

        def store(event: evt.Event) -> int:
            spool = event.request._dataset_file
            if not isinstance(spool, receiving.SpoolFile):
                log.warning("retrieved instance refused: no data set arrived with it")
                return CANNOT_UNDERSTAND
            spool.close()
            try:
                return self._file(spool, partial)
            finally:
                spool.discard()  # nothing once filed; otherwise the refused bytes

        def bound_reads(event: evt.Event) -> None:
            receiving.bound_pdu_reads(event.assoc, MAX_PDU)

        try:
            with self._association(ae, [(evt.EVT_C_STORE, store),
                                        (evt.EVT_CONN_OPEN, bound_reads)], roles) as assoc:
                spooler = receiving.Spooler(assoc, partial, self._limits.instance_bytes,
                                            part10_prefix)
                spooler.install()
                try:
                    result = _final(assoc.send_c_get(
                        _study(study_uid), StudyRootQueryRetrieveInformationModelGet), "C-GET")
                finally:
                    spooler.discard_unfiled()
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        os.rename(partial, incoming / name)
        return result

    def _file(self, spool: receiving.SpoolFile, folder: Path) -> int:
        if spool.too_large:
            log.warning("retrieved instance refused: larger than RELAY_MAX_INSTANCE_BYTES",
                        extra={"limit_bytes": self._limits.instance_bytes})
            return OUT_OF_RESOURCES
        try:
            dicomfiles.check_size(spool.path, self._limits)
        except dicomfiles.TooLargeError:
            log.warning("retrieved instance refused: its deflated data set inflates beyond "
                        "RELAY_MAX_INFLATED_BYTES")
            return OUT_OF_RESOURCES
        os.rename(spool.path, folder / f"{uuid.uuid4().hex}.dcm")
        return SUCCESS


def _study(study_uid: str) -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    return query


def _code(status: Dataset) -> int | None:
    return int(status.Status) if "Status" in status else None


def _final(responses: Iterator[tuple[Dataset, Dataset | None]], what: str) -> Retrieved:
    """Read a retrieve's responses to the end; the last one holds the sub-operation counts."""
    last: Dataset | None = None
    code: int | None = None
    for status, _identifier in responses:
        code, last = _code(status), status
    if last is None or code is None:
        raise PacsError(f"the PACS gave no answer to the {what} (timeout or association lost)")
    result = Retrieved(int(last.get("NumberOfCompletedSuboperations", 0) or 0),
                       int(last.get("NumberOfFailedSuboperations", 0) or 0),
                       int(last.get("NumberOfWarningSuboperations", 0) or 0))
    if code not in (SUCCESS, WARNING) and not (code & 0xF000 == 0xB000):
        raise PacsError(_failure(what, code) + f" ({result.failed} instance(s) failed)")
    return result


def _failure(what: str, code: int | None) -> str:
    if code is None:
        return f"the PACS gave no answer to the {what} (timeout)"
    meaning = MEANINGS.get(code, "failed")
    return f"the PACS refused the {what}: status 0x{code:04X} ({meaning})"
