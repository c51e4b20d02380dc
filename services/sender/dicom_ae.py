"""Any DICOM AE by C-STORE (pynetdicom SCU), receipt proved by a C-FIND at IMAGE level.

A series goes out on up to ``concurrency`` associations at once (RELAY_SEND_CONCURRENCY),
each carrying its own share of the instances: on one association the peer stores
one instance at a time and waits for the next, so one association sets the pace of
the whole series. Each association proposes the series' own (SOP class, transfer
syntax) pairs, one context each, so every file is sent in the encoding it is stored
in: the bytes after the file meta go out unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
)

from relay_sender import cstore
from relay_sender.destinations import DestinationError, OutgoingInstance, OutgoingSeries
from relay_sender.negotiation import Refit, accepted_file, requested_contexts
from relay_shared import tlsconfig
from relay_shared.dicom import dimse, header
from relay_shared.dicomnet import tune_connection
from relay_shared.reasons import reason_of

log = logging.getLogger(__name__)
# pynetdicom's INFO lines print query identifiers and other dataset values.
logging.getLogger("pynetdicom").setLevel(logging.WARNING)

MAX_CONTEXTS = 128
# Below this many instances a further association costs more (negotiation, release)
# than it saves.
MIN_INSTANCES_PER_ASSOCIATION = 8
HEAD_BYTES = 16 * 1024
ANSWER_POLL = 0.25
# Success, and the warnings that still mean "stored" (coercion, elements discarded).
STORED = {0x0000, 0xB000, 0xB006, 0xB007}
PENDING = {0xFF00, 0xFF01}


def presentation_contexts(paths: list[Path]) -> list[tuple[str, str]]:
    pairs = set()
    for path in paths:
        meta = read_file_meta(path)
        pairs.add((meta[0x00020002], meta[0x00020010]))
    return sorted(pairs)


def read_file_meta(path: Path) -> dict[int, str]:
    """The text elements of a file's meta, read from its first bytes (pydicom's reader
    cost more per file than sending it)."""
    meta: header.Item = {}
    with open(path, "rb") as stream:
        data = stream.read(HEAD_BYTES)
        try:
            meta, start = header.parse_file_meta(data)
            complete = start + 8 <= len(data) or len(data) < HEAD_BYTES
        except header.DicomFormatError:
            complete = len(data) < HEAD_BYTES
        if not complete:  # a file meta that goes on past the head
            data += stream.read()
            with contextlib.suppress(header.DicomFormatError):
                meta, _start = header.parse_file_meta(data)
    if 0x00020002 not in meta or 0x00020010 not in meta:
        raise DestinationError(f"{path.name} has no file meta naming its SOP class and "
                               "transfer syntax")
    return {tag: value.rstrip(b"\x00 ").decode("ascii", "replace")
            for tag, (vr, value) in meta.items() if vr in ("UI", "SH", "AE")}


def split(instances: list[OutgoingInstance], most: int, least_each: int
          ) -> list[list[OutgoingInstance]]:
    """Up to ``most`` shares of consecutive instances, each of ``least_each`` or more
    (one share when there are fewer), their sizes differing by one at most."""
    count = max(1, min(most, len(instances) // max(1, least_each)))
    size, extra = divmod(len(instances), count)
    shares, start = [], 0
    for n in range(count):
        end = start + size + (1 if n < extra else 0)
        shares.append(instances[start:end])
        start = end
    return shares


class DicomDestination:
    name = "dicom"
    sends_whole_series = False

    def __init__(self, host: str, port: int, called_ae: str, calling_ae: str = "RELAY",
                 timeout: float = 30.0, tls: tlsconfig.ClientTls | None = None, *,
                 concurrency: int = 1) -> None:
        self._address = (host, port)
        self._concurrency = max(1, concurrency)
        self._tls = tls  # fresh tls_args per association, None for plain DICOM
        self._called_ae = called_ae
        self._calling_ae = calling_ae
        self._timeout = timeout
        # Set from a transfer_syntax list: each SOP class is proposed in these, in order,
        # and a file in a syntax the AE did not accept is refitted to one it did.
        self.preferred_syntaxes: list[str] = []
        self.refit: Refit | None = None

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
        pairs = requested_contexts(
            presentation_contexts([i.path for i in series.instances]), self.preferred_syntaxes)
        if len(pairs) > MAX_CONTEXTS:
            raise DestinationError(f"series {series.series_id} needs {len(pairs)} presentation "
                                   f"contexts; one association carries {MAX_CONTEXTS}")
        contexts = [(sop, [ts]) for sop, ts in pairs]
        shares = split(series.instances, self._concurrency, MIN_INSTANCES_PER_ASSOCIATION)
        if len(shares) == 1:
            self._send_share(contexts, series.instances)
            return
        # Every share runs to its end even when another fails: what did arrive is then
        # confirmed by the check that follows, and only the rest is sent again.
        with ThreadPoolExecutor(len(shares), thread_name_prefix="c-store") as pool:
            outcomes = [pool.submit(self._send_share, contexts, share) for share in shares]
        for outcome in outcomes:
            outcome.result()

    def _send_share(self, contexts: list[tuple[str, list[str]]],
                    instances: list[OutgoingInstance]) -> None:
        with self._association(contexts) as assoc, cstore.reactor_paused(assoc):
            self._store_all(assoc, instances)

    def _store_all(self, assoc: Association, instances: list[OutgoingInstance]) -> None:
        """Each request is written, then the next one encoded while the peer stores it,
        then the peer's answer read: the peer never waits for the relay's encoding."""
        contexts = {(str(c.abstract_syntax), str(c.transfer_syntax[0])): c.context_id or 0
                    for c in assoc.accepted_contexts}
        max_pdu = int(assoc.acceptor.maximum_length or 0)
        writer = cstore.Writer(assoc)
        cstore.read_answers_directly(assoc)

        def encoded(position: int) -> cstore.EncodedRequest:
            instance = instances[position]
            try:  # message IDs count from 1 and wrap at 16 bits
                return cstore.encode_request(self._file_for(instance, contexts),
                                             position % 0xFFFF + 1, contexts, max_pdu)
            except (cstore.StoreError, OSError) as exc:
                raise DestinationError(f"image {instance.image_id} cannot be sent to DICOM AE "
                                       f"{self._called_ae}: {reason_of(exc)}") from exc

        upcoming = encoded(0) if instances else None
        for position, instance in enumerate(instances):
            assert upcoming is not None
            current = upcoming
            try:
                writer.write(current)
            except OSError as exc:
                assoc.abort()
                raise DestinationError(f"DICOM AE {self._called_ae}: the connection broke while "
                                       f"sending image {instance.image_id} "
                                       f"({type(exc).__name__})") from exc
            upcoming = encoded(position + 1) if position + 1 < len(instances) else None
            self._confirm(assoc, instance, current.message_id)

    def _file_for(self, instance: OutgoingInstance, contexts: dict[tuple[str, str], int]
                  ) -> Path:
        if self.refit is None:
            return instance.path
        meta = read_file_meta(instance.path)
        return accepted_file(instance, meta[0x00020002], meta[0x00020010], contexts,
                             self.refit)

    def _confirm(self, assoc: Association, instance: OutgoingInstance, message_id: int) -> None:
        answer = self._answer(assoc)
        if answer is None:
            assoc.abort()
            raise DestinationError(f"DICOM AE {self._called_ae} gave no answer for image "
                                   f"{instance.image_id} (timeout or association lost)")
        code: int | None = None
        responding_to: int | None = None
        if isinstance(answer, dimse.StoreAnswer):
            code, responding_to, comment = answer.status, answer.responding_to, \
                answer.error_comment
        elif isinstance(answer, C_STORE) and answer.Status is not None:
            code, responding_to, comment = int(answer.Status), \
                answer.MessageIDBeingRespondedTo, answer.ErrorComment
        if code is None or responding_to != message_id:
            assoc.abort()
            raise DestinationError(f"DICOM AE {self._called_ae} answered image "
                                   f"{instance.image_id} with something other than its "
                                   f"C-STORE response")
        if code not in STORED:
            said = f" ({comment})" if comment else ""
            raise DestinationError(f"DICOM AE {self._called_ae} rejected image "
                                   f"{instance.image_id}: status 0x{code:04X}{said}")

    def _answer(self, assoc: Association) -> object | None:
        """The peer's next DIMSE message, or None once the timeout passes or the
        association is gone (the paused reactor does not notice an abort)."""
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                return assoc.dimse.msg_queue.get(timeout=ANSWER_POLL)[1]
            if not assoc.dul.is_alive() or assoc.acse.is_aborted():
                return None
        return None

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
