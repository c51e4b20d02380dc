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
from io import BytesIO
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
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from relay_ingest import staging
from relay_ingest.staging import Staging
from relay_shared import tlsconfig
from relay_shared.deid import header
from relay_shared.dicomnet import encode_store_responses, tune_connection
from relay_shared.settings import Settings

log = logging.getLogger(__name__)
# pynetdicom's INFO lines print query identifiers and other dataset values.
logging.getLogger("pynetdicom").setLevel(logging.WARNING)

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC210
CLOSE_INTERVAL = 1.0
SERIES_INSTANCE_UID = 0x0020000E
MAX_PDU = 4 * 1024 * 1024

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
                 certificate_names_ae: bool = False) -> None:
        self._staging = area
        self._allowed = [ipaddress.ip_network(h, strict=False) for h in allowed_hosts]
        # Mutual TLS with an AE allow-list: the certificate must name the calling AE.
        self._certificate_names_ae = certificate_names_ae

    def on_store(self, event: evt.Event) -> int:
        request = cast(C_STORE, event.request)
        sop_uid = str(request.AffectedSOPInstanceUID)
        try:
            dataset = cast(BytesIO, request.DataSet).getvalue()
            prefix = part10_prefix(str(request.AffectedSOPClassUID), sop_uid,
                                   str(event.context.transfer_syntax))
            series_uid = _series_uid(prefix, dataset)
        except Exception:  # whatever the peer sent, it is not a dataset we can file
            log.warning("instance refused: cannot read its series", exc_info=True)
            return CANNOT_UNDERSTAND
        try:
            self._staging.store(series_uid, sop_uid, prefix, dataset,
                                calling_ae=str(event.assoc.requestor.ae_title).strip())
        except OSError:
            log.error("instance refused: cannot write it to staging", exc_info=True)
            return OUT_OF_RESOURCES
        return SUCCESS

    def on_open(self, event: evt.Event) -> None:
        """Finish the TLS handshake (if any) here, on the association's own thread."""
        sock = event.assoc.dul.socket
        if sock is None:
            return
        refused = tlsconfig.handshake(sock.socket)
        if refused is None:
            tune_connection(event)
            encode_store_responses(event.assoc)
            return
        log.warning("TLS connection refused", extra={
            "peer": event.assoc.requestor.address, "reason": refused})
        sock.close()  # the association then ends without a word on the wire

    def on_requested(self, event: evt.Event) -> None:
        """Refuse an address that is not on the allow-list, or a certificate that does not
        name the calling AE, before anything is negotiated."""
        if not self._host_allowed(event.assoc.requestor.address):
            self._reject(event, "association refused: address not allowed", {})
        elif self._certificate_names_ae:
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
        return [(evt.EVT_C_STORE, self.on_store), (evt.EVT_CONN_OPEN, self.on_open),
                (evt.EVT_REQUESTED, self.on_requested), (evt.EVT_C_ECHO, lambda _e: SUCCESS)]


def part10_prefix(sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str) -> bytes:
    """Preamble, DICM and the file meta that turn a received dataset into a Part 10 file.

    The same elements as pynetdicom's ``Event.file_meta``, encoded by the relay's own
    encoder: through pydicom this cost more per instance than writing the file."""
    meta: dict[int, tuple[str, bytes]] = {tag: ("UI", header.text_bytes("UI", [value], "ascii"))
                                          for tag, value in (
        (0x00020002, sop_class_uid), (0x00020003, sop_instance_uid),
        (0x00020010, transfer_syntax), (0x00020012, PYNETDICOM_IMPLEMENTATION_UID))}
    meta[0x00020013] = ("SH", header.text_bytes("SH", [PYNETDICOM_IMPLEMENTATION_VERSION],
                                                "ascii"))
    return b"\x00" * 128 + b"DICM" + header.encode_meta(meta)


def _series_uid(prefix: bytes, dataset: bytes) -> str:
    try:
        value = header.parse_file(prefix + dataset).body.get(SERIES_INSTANCE_UID)
        text = value[1].decode("ascii", "replace") if value else ""
    except Exception:  # deflated, or a header the raw parser does not take: pydicom decides
        found = dcmread(BytesIO(prefix + dataset), stop_before_pixels=True,
                        specific_tags=["SeriesInstanceUID"]).get("SeriesInstanceUID", "")
        text = str(found)
    value = text.strip("\x00 ")
    if not value:
        raise ValueError("no SeriesInstanceUID")
    return value


def make_ae(settings: Settings) -> AE:
    ae = AE(ae_title=settings.scp_ae_title)
    ae.add_supported_context(Verification)
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(str(context.abstract_syntax), TRANSFER_SYNTAXES)
    ae.require_calling_aet = list(settings.scp_allowed_aes)
    ae.maximum_associations = 64
    # Peers send PDUs up to this size: a whole instance in a few PDUs rather than
    # hundreds of 16 KiB ones, each a round of pynetdicom's reader loop.
    ae.maximum_pdu_size = MAX_PDU
    return ae


def start(settings: Settings, receiver: Receiver) -> ThreadedAssociationServer:
    ae = make_ae(settings)
    context = tlsconfig.scp_context(settings)
    server = ae.start_server((settings.scp_host, settings.scp_port), block=False,
                             evt_handlers=receiver.handlers(), ssl_context=context)
    assert server is not None
    log.info("DICOM SCP listening", extra={
        "ae_title": settings.scp_ae_title, "port": settings.scp_port,
        "tls": context is not None,
        "client_certificates": settings.scp_tls_require_client_cert})
    return server


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Receive over the network until stopped, closing stable series as they go quiet."""
    assert settings.staging_dir is not None and settings.incoming_dir is not None
    staging.recover(settings.staging_dir, settings.incoming_dir)
    area = Staging(settings.staging_dir, settings.incoming_dir, settings.stable_age)
    try:
        receiver = Receiver(area, settings.scp_allowed_hosts,
                            settings.scp_tls_require_client_cert
                            and bool(settings.scp_allowed_aes))
        server = start(settings, receiver)
    except tlsconfig.TlsConfigError as exc:
        log.error("DICOM SCP not started: TLS set-up", extra={"error": str(exc)})
        return
    except OSError as exc:
        log.error("DICOM SCP not started: cannot listen", extra={
            "port": settings.scp_port, "error": str(exc)})
        return
    try:
        while not stop.is_set():
            area.close_stable()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(CLOSE_INTERVAL, settings.stable_age))
    finally:
        await asyncio.to_thread(_shut_down, server)
        area.close_all()


def _shut_down(server: ThreadedAssociationServer) -> None:
    # A transfer cut here was not acknowledged; its sender sends it again.
    associations = list(server.active_associations)
    server.shutdown()
    for association in associations:
        association.abort()
