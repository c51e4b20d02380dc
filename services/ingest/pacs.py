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

from relay_ingest.origin import write_origin
from relay_shared import tlsconfig
from relay_shared.dicomnet import tune_connection
from relay_shared.projects import Arrival, Source

log = logging.getLogger(__name__)
logging.getLogger("pynetdicom").setLevel(logging.WARNING)

PENDING = {0xFF00, 0xFF01}
SUCCESS = 0x0000
WARNING = 0xB000
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
                 limit: RateLimit, tls: tlsconfig.ClientTls | None = None) -> None:
        self._address = (host, port)
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
        """C-GET into NAME.tmpXXXX inside incoming, renamed to NAME once complete."""
        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
        for sop_class in GET_STORAGE_CLASSES:
            ae.add_requested_context(sop_class)
        roles = [build_role(sop_class, scp_role=True) for sop_class in GET_STORAGE_CLASSES]
        partial = incoming / f"{name}.tmp{uuid.uuid4().hex[:8]}"
        partial.mkdir(parents=True)
        write_origin(partial, Arrival(Source.COLLECT.value))

        def store(event: evt.Event) -> int:
            data = event.encoded_dataset(include_meta=True)
            (partial / f"{uuid.uuid4().hex}.dcm").write_bytes(data)
            return SUCCESS

        try:
            with self._association(ae, [(evt.EVT_C_STORE, store)], roles) as assoc:
                result = _final(assoc.send_c_get(_study(study_uid),
                                                 StudyRootQueryRetrieveInformationModelGet),
                                "C-GET")
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        os.rename(partial, incoming / name)
        return result


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
    meaning = {0xA701: "out of resources", 0xA801: "move destination unknown",
               0xA900: "identifier does not match SOP class", 0xC000: "unable to process",
               0xFE00: "cancelled"}.get(code, "failed")
    return f"the PACS refused the {what}: status 0x{code:04X} ({meaning})"
