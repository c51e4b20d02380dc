"""Storage commitment as an SCP (PS3.4 Annex J, Push Model).

A modality asks by N-ACTION whether the relay has taken responsibility for the
instances it sent; the relay answers at once that it has the request, and later, by
N-EVENT-REPORT, which instances it commits to.

The relay passes series along; it is not an archive. What it commits to is that an
instance arrived whole and is recorded in its database: from there the relay sees it
through (de-identified, sent, cleaned up). So the answer comes from the Image rows,
not from files: an instance whose series is DONE and whose files are gone is still
committed, as is one its project dropped or holds. An instance still on its way
(staged, handed over, being recorded) is waited for, up to RELAY_SCP_COMMITMENT_TIMEOUT;
one that left that way without a row (set aside as unreadable or conflicting) is a
processing failure (0x0110); one the relay never saw is no such instance (0x0112); one
recorded under another SOP class is a class-instance conflict (0x0119). Files on their
way are known by their names, keyed from the relay's secret: the same in every SCP
process on the volume and after a restart, so an instance staged by another replica, or
before a restart, is waited for like one of this process's own.

The report goes on a new association to the requesting AE when RELAY_SCP_ALLOWED_AES
gives it an address (TITLE@host:port; plain DICOM only: an SCP on TLS reports on the
requesting association alone), else, or when that fails, on the association the
request came on while that is still open (PS3.4 J.3.3 allows either).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_role, evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import N_ACTION
from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from relay_ingest import staging
from relay_shared.models import Image
from relay_shared.reasons import RelayError

log = logging.getLogger(__name__)

# The well-known SOP Instance of the Push Model (PS3.4 J.3.5).
PUSH_MODEL_INSTANCE = "1.2.840.10008.1.20.1.1"
REQUEST_COMMITMENT = 1
ALL_COMMITTED, SOME_FAILED = 1, 2
TRANSFER_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
# Failure Reasons of the report (PS3.4 J.3.2.1.2).
PROCESSING_FAILURE = 0x0110
NO_SUCH_INSTANCE = 0x0112
CLASS_INSTANCE_CONFLICT = 0x0119
# N-ACTION statuses.
SUCCESS = 0x0000
INVALID_ARGUMENT = 0x0115
INVALID_INSTANCE = 0x0117
NO_SUCH_ACTION = 0x0123
RESOURCE_LIMITATION = 0x0213
# Requests waiting at once; each holds its list of references in memory.
MAX_WAITING = 1000
# A report that could not be delivered is tried again, this often, this far apart.
REPORT_ATTEMPTS = 3
REPORT_RETRY_DELAY = 10.0
# SQLite takes at most 999 parameters in one statement.
LOOKUP_BATCH = 500

UidOf = Callable[[str], str]


@dataclass(frozen=True)
class Reference:
    sop_class_uid: str
    sop_instance_uid: str


@dataclass
class Outcome:
    committed: list[Reference] = field(default_factory=list)
    failed: list[tuple[Reference, int]] = field(default_factory=list)


@dataclass
class Request:
    transaction_uid: str
    calling_ae: str
    references: list[Reference]
    association: Association | None
    deadline: float
    # Instances found on their way at some check: gone without a row is a failure.
    seen_on_the_way: set[str] = field(default_factory=set)
    attempts: int = 0
    next_attempt: float = 0.0
    outcome: Outcome | None = None


class InvalidRequest(RelayError):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def parse_request(info: Dataset | None) -> tuple[str, list[Reference]]:
    """The transaction and the instances named by an N-ACTION's Action Information."""
    transaction = str(getattr(info, "TransactionUID", "") or "").strip()
    if not transaction:
        raise InvalidRequest(INVALID_ARGUMENT, "no Transaction UID")
    items = getattr(info, "ReferencedSOPSequence", None) or []
    references = []
    for item in items:
        sop_class = str(item.get("ReferencedSOPClassUID", "") or "").strip()
        sop_instance = str(item.get("ReferencedSOPInstanceUID", "") or "").strip()
        if not sop_class or not sop_instance:
            raise InvalidRequest(INVALID_ARGUMENT, "a referenced instance without its "
                                 "SOP Class or SOP Instance UID")
        references.append(Reference(sop_class, sop_instance))
    if not references:
        raise InvalidRequest(INVALID_ARGUMENT, "no Referenced SOP Sequence")
    return transaction, references


def report(transaction_uid: str, outcome: Outcome) -> tuple[int, Dataset]:
    """The Event Type ID and Event Information of the N-EVENT-REPORT."""
    info = Dataset()
    info.TransactionUID = transaction_uid
    if outcome.committed:
        info.ReferencedSOPSequence = [_item(ref) for ref in outcome.committed]
    if outcome.failed:
        failed = []
        for ref, reason in outcome.failed:
            item = _item(ref)
            item.FailureReason = reason
            failed.append(item)
        info.FailedSOPSequence = failed
    return (SOME_FAILED if outcome.failed else ALL_COMMITTED), info


def _item(ref: Reference) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ref.sop_class_uid
    item.ReferencedSOPInstanceUID = ref.sop_instance_uid
    return item


class Pipeline:
    """The folders an instance received by the SCP passes through before it is
    recorded: its series' staged delivery, then the same folder in incoming, then
    claimed by ingest. Files there are named by the staging key of their instance."""

    def __init__(self, staging_dir: Path, incoming_dir: Path, claimed_dir: Path) -> None:
        # In the order an instance moves: a folder renamed onward while one is listed
        # is found in the next.
        self._folders = [staging_dir, incoming_dir, claimed_dir]

    def keys_on_the_way(self) -> set[str]:
        keys: set[str] = set()
        for root in self._folders:
            for delivery in _deliveries(root):
                keys.update(name.partition("-")[0] for name in _names(delivery))
        return keys


def _deliveries(root: Path) -> list[Path]:
    """The staged deliveries in a folder, and in the staging areas of SCP processes that
    share it (staging.process_area)."""
    found = []
    for child in _listing(root):
        if child.name.startswith(staging.DELIVERY_PREFIX):
            found.append(child)
        elif child.name.startswith(staging.AREA_PREFIX):
            found += [d for d in _listing(child) if d.name.startswith(staging.DELIVERY_PREFIX)]
    return found


def _listing(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:  # not there (yet), or renamed onward while listed
        return []


def _names(folder: Path) -> list[str]:
    return [path.name for path in _listing(folder) if path.name.endswith(".dcm")]


def recorded_classes(engine: Engine, uid_of: UidOf, sop_uids: Iterable[str]
                     ) -> dict[str, str | None]:
    """The SOP class recorded for each of these (original) instance UIDs that has a row."""
    by_key = {uid_of(uid): uid for uid in sop_uids}
    keys = list(by_key)
    found: dict[str, str | None] = {}
    with Session(engine) as session:
        for start in range(0, len(keys), LOOKUP_BATCH):
            rows = session.exec(select(Image.sop_uid, Image.sop_class_uid).where(
                col(Image.sop_uid).in_(keys[start:start + LOOKUP_BATCH])))
            for sop_key, sop_class in rows:
                found[by_key[str(sop_key)]] = sop_class
    return found


def judge(request: Request, recorded: dict[str, str | None], on_the_way: set[str],
          now: float) -> Outcome | None:
    """The outcome of a request, or None while an instance named is still on its way."""
    keys = {ref.sop_instance_uid: staging.uid_key(ref.sop_instance_uid)
            for ref in request.references if ref.sop_instance_uid not in recorded}
    still = {uid for uid, key in keys.items() if key in on_the_way}
    request.seen_on_the_way |= still
    if still and now < request.deadline:
        return None
    outcome = Outcome()
    for ref in request.references:
        uid = ref.sop_instance_uid
        if uid in recorded:
            sop_class = recorded[uid]
            if sop_class is None or sop_class == ref.sop_class_uid:
                outcome.committed.append(ref)
            else:
                outcome.failed.append((ref, CLASS_INSTANCE_CONFLICT))
        elif uid in request.seen_on_the_way:
            outcome.failed.append((ref, PROCESSING_FAILURE))
        else:
            outcome.failed.append((ref, NO_SUCH_INSTANCE))
    return outcome


@dataclass(frozen=True)
class Reporter:
    """Who the relay is when it opens an association to report, and to whom."""

    ae_title: str
    addresses: dict[str, tuple[str, int]]
    new_associations: bool = True
    timeout: float = 30.0


class CommitmentKeeper:
    """Takes N-ACTION requests on pynetdicom's threads; ``answer_ready`` (called
    regularly, off the event loop) reports on those whose instances are settled."""

    def __init__(self, engine: Engine, uid_of: UidOf, pipeline: Pipeline,
                 reporter: Reporter, timeout: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._engine = engine
        self._uid_of = uid_of
        self._pipeline = pipeline
        self._reporter = reporter
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting: list[Request] = []

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def on_action(self, event: evt.Event) -> tuple[int, Dataset | None]:
        calling = str(event.assoc.requestor.ae_title).strip()
        if event.action_type != REQUEST_COMMITMENT:
            return NO_SUCH_ACTION, None
        if str(cast(N_ACTION, event.request).RequestedSOPInstanceUID) != PUSH_MODEL_INSTANCE:
            return INVALID_INSTANCE, None
        try:
            transaction, references = parse_request(event.action_information)
        except InvalidRequest as exc:
            log.warning("storage commitment request refused", extra={
                "calling_ae": calling, "reason": exc.reason})
            return exc.status, None
        except Exception:  # an Action Information that does not decode
            log.warning("storage commitment request refused: its data set does not decode",
                        extra={"calling_ae": calling})
            return INVALID_ARGUMENT, None
        request = Request(transaction, calling, references, event.assoc,
                          self._clock() + self._timeout)
        with self._lock:
            if len(self._waiting) >= MAX_WAITING:
                log.warning("storage commitment request refused: too many waiting",
                            extra={"calling_ae": calling, "waiting": MAX_WAITING})
                return RESOURCE_LIMITATION, None
            self._waiting.append(request)
        log.info("storage commitment requested", extra={
            "calling_ae": calling, "instances": len(references)})
        return SUCCESS, None

    def answer_ready(self) -> int:
        """Report on every request whose instances are settled; return how many."""
        with self._lock:
            waiting = list(self._waiting)
        if not waiting:
            return 0
        now = self._clock()
        # Files first, rows second: ingest commits a row before it moves the file, so an
        # instance that left the folders between the two is found in the database.
        on_the_way = self._pipeline.keys_on_the_way()
        undecided = [r for r in waiting if r.outcome is None]
        recorded = recorded_classes(self._engine, self._uid_of, {
            ref.sop_instance_uid for r in undecided for ref in r.references})
        answered = 0
        for request in waiting:
            if request.outcome is None:
                request.outcome = judge(request, recorded, on_the_way, now)
            if request.outcome is not None and request.next_attempt <= now \
                    and self._deliver(request, request.outcome):
                answered += 1
        return answered

    def _deliver(self, request: Request, outcome: Outcome) -> bool:
        """Send the report; a request is dropped once reported or out of attempts."""
        request.attempts += 1
        sent = send_report(request, outcome, self._reporter)
        if sent or request.attempts >= REPORT_ATTEMPTS:
            with self._lock:
                self._waiting.remove(request)
            log_fields = {"calling_ae": request.calling_ae, "committed": len(outcome.committed),
                          "failed": len(outcome.failed)}
            if sent:
                log.info("storage commitment reported", extra=log_fields)
            else:
                log.error("storage commitment report given up: the AE could not be "
                          "reached", extra={**log_fields, "attempts": request.attempts})
            return sent
        request.next_attempt = self._clock() + REPORT_RETRY_DELAY
        return False


def send_report(request: Request, outcome: Outcome, reporter: Reporter) -> bool:
    """On a new association when the AE has an address (its listener takes reports
    whenever they come), else on the requesting association while it is open and no
    message of the AE's is arriving on it (the answer awaited there must be the
    report's)."""
    event_type, info = report(request.transaction_uid, outcome)
    address = reporter.addresses.get(request.calling_ae)
    if address is not None and reporter.new_associations \
            and _report_to(address, reporter, event_type, info, request.calling_ae):
        return True
    assoc = request.association
    if assoc is not None and assoc.is_established and assoc.dimse.message is None \
            and _report_on(assoc, event_type, info, request.calling_ae):
        return True
    if address is None and (assoc is None or not assoc.is_established):
        log.warning("storage commitment report waits: the requesting association has "
                    "closed and RELAY_SCP_ALLOWED_AES gives the AE no address",
                    extra={"calling_ae": request.calling_ae})
    return False


def _report_to(address: tuple[str, int], reporter: Reporter, event_type: int, info: Dataset,
               calling_ae: str) -> bool:
    ae = AE(ae_title=reporter.ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = reporter.timeout
    ae.connection_timeout = reporter.timeout
    ae.add_requested_context(StorageCommitmentPushModel, TRANSFER_SYNTAXES)
    # The relay opens the association as the SCP of the Push Model (PS3.4 J.3.3).
    role = build_role(StorageCommitmentPushModel, scu_role=False, scp_role=True)
    host, port = address
    opened = ae.associate(host, port, ae_title=calling_ae, ext_neg=[role])
    if not opened.is_established:
        log.warning("storage commitment report: association to the AE refused or "
                    "unreachable", extra={"calling_ae": calling_ae})
        return False
    try:
        return _report_on(opened, event_type, info, calling_ae)
    finally:
        opened.release()


def _report_on(assoc: Association, event_type: int, info: Dataset, calling_ae: str) -> bool:
    try:
        status, _reply = assoc.send_n_event_report(info, event_type, StorageCommitmentPushModel,
                                                   PUSH_MODEL_INSTANCE)
    except (RuntimeError, ValueError) as exc:  # no context for it, or the link went away
        log.warning("storage commitment report not sent on the association",
                    extra={"calling_ae": calling_ae, "error_type": type(exc).__name__})
        return False
    code = int(status.Status) if "Status" in status else None
    if code != SUCCESS:
        log.warning("storage commitment report not taken by the AE", extra={
            "calling_ae": calling_ae,
            "status": "none" if code is None else f"0x{code:04X}"})
        return False
    return True
