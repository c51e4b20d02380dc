"""The DICOM SCP of ingest: C-ECHO, and C-STORE of every storage SOP class.

Instances are written exactly as received (the dataset bytes of the request
behind a file meta: no decode, no re-encode, compressed pixel data untouched)
into the staging folder of their series. pynetdicom calls the handlers on its own
threads, which write through the staging area's lock; the asyncio loop only
closes series that have gone quiet. A handler never raises: it answers with a
status.

Over TLS (``RELAY_SCP_TLS_CERT``) the handshake runs on the association's thread when
the connection opens; a peer whose certificate does not verify is logged with the
link that failed and disconnected. With client certificates required and an AE
allow-list, the calling AE title must be the certificate's CN or one of its DNS names.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from pathlib import Path
from typing import cast

from pydicom import dcmread
from pydicom import uid as uids
from pynetdicom import (
    AE,
    PYNETDICOM_IMPLEMENTATION_UID,
    PYNETDICOM_IMPLEMENTATION_VERSION,
    AllStoragePresentationContexts,
    evt,
)
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StorageCommitmentPushModel,
    Verification,
)
from pynetdicom.transport import ThreadedAssociationServer

from relay_ingest import commitment, receiving, staging
from relay_ingest.arrivals import Arrivals
from relay_ingest.origin import OriginSeal
from relay_ingest.staging import Staging
from relay_shared import dicomfiles, series_lock, tlsconfig
from relay_shared.db import PROCESS_NAME
from relay_shared.dicom import header
from relay_shared.dicom.status import CANNOT_UNDERSTAND, OUT_OF_RESOURCES, SUCCESS
from relay_shared.dicomnet import encode_store_responses, tune_connection
from relay_shared.reasons import reason_of
from relay_shared.settings import Settings

log = logging.getLogger(__name__)
# pynetdicom's INFO lines print query identifiers and other dataset values.
logging.getLogger("pynetdicom").setLevel(logging.WARNING)

CLOSE_INTERVAL = 1.0
SERIES_INSTANCE_UID = 0x0020000E
TRANSFER_SYNTAX_UID = 0x00020010
DEFLATED_SYNTAX = b"1.2.840.10008.1.2.1.99"
MAX_PDU = 4 * 1024 * 1024
CONNECTIONS_PER_ASSOCIATION = 2
# Enough for the header of nearly every instance: the raw parser reads it in one go.
HEAD_BYTES = 256 * 1024

# The acceptor's order wins when a context offers several, so the compressed
# syntaxes come first: an instance is then stored in the encoding it was sent in.
TRANSFER_SYNTAXES = [
    uids.JPEG2000Lossless, uids.JPEG2000, uids.HTJ2KLossless, uids.HTJ2KLosslessRPCL,
    uids.HTJ2K, uids.JPEGLSLossless, uids.JPEGLSNearLossless, uids.JPEGLosslessSV1,
    uids.JPEGLossless, uids.JPEGBaseline8Bit, uids.JPEGExtended12Bit, uids.RLELossless,
    uids.DeflatedExplicitVRLittleEndian, uids.ExplicitVRLittleEndian,
    uids.ImplicitVRLittleEndian, uids.ExplicitVRBigEndian,
]

class Receiver:
    """The C-STORE and association handlers, bound to one staging area."""

    def __init__(self, area: Staging, allowed_hosts: list[str],
                 certificate_names_ae: bool = False,
                 limits: dicomfiles.SizeLimits = dicomfiles.DEFAULT_LIMITS,
                 commitments: commitment.CommitmentKeeper | None = None) -> None:
        self._staging = area
        self._commitments = commitments
        self._limits = limits
        self._allowed = [ipaddress.ip_network(h, strict=False) for h in allowed_hosts]
        # Mutual TLS with an AE allow-list: the certificate must name the calling AE.
        self._certificate_names_ae = certificate_names_ae

    @property
    def answers_commitments(self) -> bool:
        return self._commitments is not None

    def on_store(self, event: evt.Event) -> int:
        request = cast(C_STORE, event.request)
        spool = request._dataset_file
        if not isinstance(spool, receiving.SpoolFile):  # a request without a data set
            log.warning("instance refused: no data set arrived with it")
            return CANNOT_UNDERSTAND
        spool.close()
        try:
            return self._file(spool, str(request.AffectedSOPInstanceUID),
                              str(event.assoc.requestor.ae_title).strip())
        finally:
            spool.discard()  # nothing once filed; otherwise the refused bytes

    def _file(self, spool: receiving.SpoolFile, sop_uid: str, calling_ae: str) -> int:
        if spool.too_large:
            log.warning("instance refused: larger than RELAY_MAX_INSTANCE_BYTES",
                        extra={"limit_bytes": self._limits.instance_bytes})
            return OUT_OF_RESOURCES
        try:
            series_uid = _series_uid(spool.path, self._limits)
        except dicomfiles.TooLargeError:
            log.warning("instance refused: its deflated data set inflates beyond "
                        "RELAY_MAX_INFLATED_BYTES")
            return OUT_OF_RESOURCES
        except Exception:  # whatever the peer sent, it is not a dataset we can file
            log.warning("instance refused: cannot read its series")
            return CANNOT_UNDERSTAND
        try:
            self._staging.store_file(series_uid, sop_uid, spool.path, calling_ae=calling_ae)
        except OSError:
            log.error("instance refused: cannot write it to staging", exc_info=True)
            return OUT_OF_RESOURCES
        return SUCCESS

    def on_open(self, event: evt.Event) -> None:
        """Before pynetdicom reads a byte: refuse an address not allowed, bound what the
        peer can make the relay hold, and finish the TLS handshake (if any), all on the
        association's own thread."""
        assoc, sock = event.assoc, event.assoc.dul.socket
        if sock is None:
            return
        address = assoc.requestor.address
        refusal = self._refusal(assoc)
        if refusal is not None:
            log.warning(f"connection refused: {refusal}", extra={"peer": address})
            sock.close()
            return
        receiving.bound_pdu_reads(assoc, MAX_PDU)
        spooler = receiving.Spooler(assoc, self._staging.spool_dir, self._limits.instance_bytes,
                                    part10_prefix)
        spooler.install()
        assoc.bind(evt.EVT_CONN_CLOSE, lambda _e: spooler.discard_unfiled())
        refused = tlsconfig.handshake(sock.socket)
        if refused is None:
            tune_connection(event)
            encode_store_responses(assoc)
            return
        log.warning("TLS connection refused", extra={"peer": address, "reason": refused})
        sock.close()  # the association then ends without a word on the wire

    def _refusal(self, assoc: Association) -> str | None:
        if not self._host_allowed(assoc.requestor.address):
            return "address not allowed"
        # Connections still negotiating count too (a thread each, until pynetdicom's
        # 30 s ARTIM timer): room for the associations, and as many again to be told no.
        if len(assoc.ae.active_associations) >= CONNECTIONS_PER_ASSOCIATION \
                * assoc.ae.maximum_associations:
            return "too many connections open"
        return None

    def on_requested(self, event: evt.Event) -> None:
        """Refuse a certificate that does not name the calling AE, before anything is
        negotiated (the address was checked when the connection opened)."""
        if self._certificate_names_ae:
            # The requestor's AE title is filled in after this event; the request has it.
            request, sock = event.assoc.requestor.primitive, event.assoc.dul.socket
            calling = str(request.calling_ae_title if request else "").strip()
            tls = sock.socket if sock is not None else None
            peer = tls.getpeercert() if isinstance(tls, ssl.SSLSocket) else None
            names = tlsconfig.certificate_names(peer)
            if calling not in names:
                self._reject(event, "association refused: client certificate does not name "
                             "the calling AE", {"calling_ae": calling,
                                                "certificate_names": sorted(names)})

    def _host_allowed(self, host: str) -> bool:
        if not self._allowed:
            return True
        with contextlib.suppress(ValueError):
            return any(ipaddress.ip_address(host) in net for net in self._allowed)
        return False

    @staticmethod
    def _reject(event: evt.Event, message: str, extra: dict[str, object]) -> None:
        log.warning(message, extra=extra)
        # rejected-permanent, service-user, no reason given
        event.assoc.acse.send_reject(0x01, 0x01, 0x01)
        event.assoc.kill()  # waits for the reject to leave, as pynetdicom's own refusals do

    def handlers(self) -> list[evt.EventHandlerType]:
        bound: list[evt.EventHandlerType] = [
            (evt.EVT_C_STORE, self.on_store), (evt.EVT_CONN_OPEN, self.on_open),
            (evt.EVT_REQUESTED, self.on_requested), (evt.EVT_C_ECHO, lambda _e: SUCCESS)]
        if self._commitments is not None:
            bound.append((evt.EVT_N_ACTION, self._commitments.on_action))
        return bound


def part10_prefix(sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str) -> bytes:
    """Preamble, DICM and the file meta that turn a received dataset into a Part 10 file.

    The same elements as pynetdicom's ``Event.file_meta``, encoded by the relay's own
    encoder: through pydicom this cost more per instance than writing the file."""
    meta: dict[int, tuple[str, bytes]] = {tag: ("UI", header.text_bytes("UI", [value]))
                                          for tag, value in (
        (0x00020002, sop_class_uid), (0x00020003, sop_instance_uid),
        (0x00020010, transfer_syntax), (0x00020012, PYNETDICOM_IMPLEMENTATION_UID))}
    meta[0x00020013] = ("SH", header.text_bytes("SH", [PYNETDICOM_IMPLEMENTATION_VERSION]))
    return b"\x00" * 128 + b"DICM" + header.encode_meta(meta)


def _deflated(data: bytes) -> bool:
    try:
        meta, _ = header.parse_file_meta(data)
    except header.DicomFormatError:
        return False  # the parse below names what is wrong
    syntax = meta.get(TRANSFER_SYNTAX_UID)
    return syntax is not None and syntax[1].rstrip(b"\x00 ") == DEFLATED_SYNTAX


def _series_uid(path: Path, limits: dicomfiles.SizeLimits) -> str:
    """The series of a received file: from its first bytes by the raw parser when it can,
    else by pydicom, with values deferred and any deflated data set inflated in bounds."""
    with open(path, "rb") as stream:
        data = stream.read(HEAD_BYTES)
        whole = not stream.read(1)
    if _deflated(data):  # counted as it inflates, kept nowhere, before the parser holds it
        dicomfiles.check_size(path, limits)
    try:
        elem = header.parse_file(data, complete=whole,
                                 max_inflated_bytes=limits.inflated_bytes
                                 ).body.get(SERIES_INSTANCE_UID)
        text = elem[1].decode("ascii", "replace") if elem else ""
    except Exception:  # deflated, or a header the raw parser does not take: pydicom decides
        dicomfiles.check_size(path, limits)
        found = dcmread(path, stop_before_pixels=True, defer_size=1024,
                        specific_tags=["SeriesInstanceUID"]).get("SeriesInstanceUID", "")
        text = str(found)
    value = text.strip("\x00 ")
    if not value:
        raise ValueError("no SeriesInstanceUID")
    return value


def make_ae(settings: Settings, commitments: bool = False) -> AE:
    ae = AE(ae_title=settings.scp_ae_title)
    ae.add_supported_context(Verification)
    if commitments:
        ae.add_supported_context(StorageCommitmentPushModel, commitment.TRANSFER_SYNTAXES)
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(str(context.abstract_syntax), TRANSFER_SYNTAXES)
    # Checked on the A-ASSOCIATE-RQ, before any P-DATA is read (see receiving.py).
    ae.require_calling_aet = settings.scp_allowed_ae_titles
    ae.maximum_associations = settings.scp_max_associations
    # Peers send PDUs up to this size: a whole instance in a few PDUs rather than
    # hundreds of 16 KiB ones, each a round of pynetdicom's reader loop.
    ae.maximum_pdu_size = MAX_PDU
    return ae


def start(settings: Settings, receiver: Receiver) -> ThreadedAssociationServer:
    ae = make_ae(settings, commitments=receiver.answers_commitments)
    context = tlsconfig.scp_context(settings)
    server = ae.start_server((settings.scp_host, settings.scp_port), block=False,
                             evt_handlers=receiver.handlers(), ssl_context=context)
    assert server is not None
    log.info("DICOM SCP listening", extra={
        "ae_title": settings.scp_ae_title, "port": settings.scp_port,
        "tls": context is not None,
        "client_certificates": settings.scp_tls_require_client_cert})
    return server


async def serve(settings: Settings, stop: asyncio.Event, arrivals: Arrivals | None = None,
                commitments: commitment.CommitmentKeeper | None = None) -> None:
    """Receive over the network until stopped, closing stable series as they go quiet
    (with ``arrivals``, quiet at every SCP process of the relay) and, with a keeper,
    answering storage commitment requests once they can be."""
    assert settings.staging_dir is not None and settings.incoming_dir is not None
    staging.key_names_with(settings.deid_secret.get_secret_value().encode())
    if arrivals is None:
        staging.recover(settings.staging_dir, settings.incoming_dir)
        await _serve_area(settings, stop, settings.staging_dir, None, commitments)
        return
    # Other processes may stage on the same volume: this one keeps to an area of its
    # own, held (by a database lock) for as long as it lives.
    area_dir = staging.process_area(settings.staging_dir, PROCESS_NAME)
    with series_lock.holding(arrivals.engine, area_dir.name):
        await asyncio.to_thread(
            staging.recover_areas, settings.staging_dir, settings.incoming_dir,
            # Its own area is left from an earlier life of this process: taken up too.
            lambda name: name != area_dir.name
            and series_lock.held_by_someone(arrivals.engine, name))
        await _serve_area(settings, stop, area_dir, arrivals, commitments)


async def _serve_area(settings: Settings, stop: asyncio.Event, area_dir: Path,
                      arrivals: Arrivals | None,
                      commitments: commitment.CommitmentKeeper | None) -> None:
    assert settings.incoming_dir is not None
    area = Staging(area_dir, settings.incoming_dir, settings.stable_age,
                   OriginSeal.of(settings))
    receiving.clear_spool(area.spool_dir)
    try:
        receiver = Receiver(area, settings.scp_allowed_hosts,
                            settings.scp_tls_require_client_cert
                            and bool(settings.scp_allowed_aes),
                            dicomfiles.SizeLimits(settings.max_instance_bytes,
                                                  settings.max_inflated_bytes),
                            commitments)
        server = start(settings, receiver)
    except tlsconfig.TlsConfigError as exc:
        log.error("DICOM SCP not started: TLS set-up", extra={"error": str(exc)})
        return
    except OSError as exc:
        log.error("DICOM SCP not started: cannot listen", extra={
            "port": settings.scp_port, "error": reason_of(exc)})
        return
    try:
        while not stop.is_set():
            await asyncio.to_thread(_close_round, area, arrivals)
            if commitments is not None:
                await _answer_commitments(commitments)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(CLOSE_INTERVAL, settings.stable_age))
    finally:
        await asyncio.to_thread(_shut_down, server)
        await asyncio.to_thread(_mark_handed_over, arrivals, area.close_all())


def _close_round(area: Staging, arrivals: Arrivals | None) -> None:
    if arrivals is None:
        area.close_stable()
        return
    try:
        arrivals.note(area.open_parts())
        handed = area.close_stable(lambda uids: arrivals.quiet(uids))
    except Exception:  # the database is down: nothing closes until it is back
        log.warning("staged series not closed this round: the database is unavailable",
                    exc_info=True)
        return
    _mark_handed_over(arrivals, handed)


def _mark_handed_over(arrivals: Arrivals | None, handed: list[Path]) -> None:
    if arrivals is None:
        return
    for folder in handed:
        try:
            arrivals.handed_over(folder.name)
        except Exception:  # its heartbeat stops: after a while it no longer holds anyone up
            log.warning("a handed-over series part could not be recorded", exc_info=True)


async def _answer_commitments(commitments: commitment.CommitmentKeeper) -> None:
    try:
        await asyncio.to_thread(commitments.answer_ready)
    except Exception:  # the database away: the requests wait for the next round
        log.warning("storage commitment requests not checked, will retry", exc_info=True)


def _shut_down(server: ThreadedAssociationServer) -> None:
    # A transfer cut here was not acknowledged; its sender sends it again.
    associations = list(server.active_associations)
    server.shutdown()
    for association in associations:
        association.abort()
