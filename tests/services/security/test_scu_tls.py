"""The relay's C-STORE and C-FIND over TLS, against a pynetdicom peer with a TLS context of
its own: a peer whose chain verifies (and which asks for the relay's client certificate)
gets the series; one that is self-signed, chained to another CA or named for another
host is refused before anything is sent, with a DestinationError naming the failure."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
)
from pynetdicom.transport import ThreadedAssociationServer

from relay_ingest.collector import Collector
from relay_ingest.pacs import Pacs, PacsError
from relay_sender.destinations import DestinationError, OutgoingInstance, OutgoingSeries
from relay_sender.dicom_ae import DicomDestination
from relay_sender.main import build_destinations
from relay_shared.bus import InProcessBus, RetryPolicy
from relay_shared.db import upgrade
from relay_shared.runtime import build_runtime
from relay_shared.settings import load_settings
from tests.services.security.conftest import Certificates
from tests.support.certs import Leaf
from tests.support.dicom_factory import Patient, SeriesSpec, write_series
from tests.support.services import free_port

PATIENT = Patient("MRN-6006", "Meitner^Lise")
PEER_AE = "PEERTLS"


class Peer:
    """A TLS storage SCP that answers C-FIND at IMAGE level from what it stored."""

    def __init__(self, leaf: Leaf, client_ca: Path | None = None) -> None:
        self.stored: dict[str, str] = {}  # SOPInstanceUID -> SeriesInstanceUID
        self.port = free_port()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(leaf.cert), str(leaf.key))
        if client_ca is not None:
            context.load_verify_locations(cafile=str(client_ca))
            context.verify_mode = ssl.CERT_REQUIRED
        ae = AE(ae_title=PEER_AE)
        for presentation in AllStoragePresentationContexts:
            ae.add_supported_context(presentation.abstract_syntax)
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
        handlers = [(evt.EVT_C_STORE, self._store), (evt.EVT_C_FIND, self._find)]
        server = ae.start_server(("127.0.0.1", self.port), block=False, ssl_context=context,
                                 evt_handlers=handlers)
        assert isinstance(server, ThreadedAssociationServer)
        self.server = server

    def _store(self, event: evt.Event) -> int:
        ds = event.dataset
        self.stored[str(ds.SOPInstanceUID)] = str(ds.SeriesInstanceUID)
        return 0x0000

    def _find(self, event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        series = str(event.identifier.SeriesInstanceUID)
        for sop, of_series in list(self.stored.items()):
            if of_series == series:
                answer = Dataset()
                answer.QueryRetrieveLevel = "IMAGE"
                answer.SOPInstanceUID = sop
                yield 0xFF00, answer
        yield 0x0000, None

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    started: list[Peer] = []
    yield started
    for peer in started:
        peer.stop()


def outgoing(paths: list[Path]) -> OutgoingSeries:
    headers = [dcmread(p, stop_before_pixels=True) for p in paths]
    return OutgoingSeries(1, str(headers[0].StudyInstanceUID), str(headers[0].SeriesInstanceUID),
                          [OutgoingInstance(n, str(h.SOPInstanceUID), p)
                           for n, (h, p) in enumerate(zip(headers, paths, strict=True))])


def relay_to(peer: Peer, certs: Certificates, tmp_path: Path, **tls: object) -> DicomDestination:
    settings = load_settings(data_dir=tmp_path / "var", destinations="dicom",
                             dicom_host="127.0.0.1", dicom_port=peer.port,
                             dicom_ae_title=PEER_AE, dicom_timeout=10, dicom_tls=True,
                             dicom_tls_ca=certs.ca, **tls)
    [destination] = build_destinations(settings)
    assert isinstance(destination, DicomDestination)
    return destination


def test_c_store_and_c_find_over_mutual_tls(peers: list[Peer], certs: Certificates,
                                            tmp_path: Path) -> None:
    peers.append(peer := Peer(certs.server, client_ca=certs.ca))
    destination = relay_to(peer, certs, tmp_path, dicom_tls_cert=certs.relay_client.cert,
                           dicom_tls_key=certs.relay_client.key)
    series = outgoing(write_series(SeriesSpec(PATIENT, instances=4), tmp_path / "series"))
    assert destination.missing(series) == {i.sop_instance_uid for i in series.instances}
    destination.send(series)
    assert destination.missing(series) == set()
    assert len(peer.stored) == 4


@pytest.mark.parametrize(("which", "expected"), [
    ("self_signed_server", ["self-signed certificate", "'CN=peer.test,O=Relay tests' "
                            "is self-signed", "RELAY_DICOM_TLS_CA"]),
    ("rogue_server", ["unable to get local issuer certificate",
                      "issued by 'CN=Rogue CA,O=Relay tests'", "RELAY_DICOM_TLS_CA"]),
    ("misnamed_server", ["mismatch, certificate is not valid for '127.0.0.1'"]),
])
def test_a_peer_whose_certificate_does_not_verify_is_refused(
        peers: list[Peer], certs: Certificates, tmp_path: Path, which: str,
        expected: list[str]) -> None:
    peers.append(peer := Peer(getattr(certs, which)))
    destination = relay_to(peer, certs, tmp_path)
    series = outgoing(write_series(SeriesSpec(PATIENT, instances=1), tmp_path / "series"))
    with pytest.raises(DestinationError) as refused:
        destination.send(series)
    message = str(refused.value)
    assert message.startswith(f"DICOM AE {PEER_AE} at 127.0.0.1:{peer.port}: certificate "
                              "verification failed"), message
    for part in expected:
        assert part in message, message
    assert peer.stored == {}


def test_the_name_to_verify_can_differ_from_the_host_dialled(
        peers: list[Peer], certs: Certificates, tmp_path: Path) -> None:
    peers.append(peer := Peer(certs.misnamed_server))
    destination = relay_to(peer, certs, tmp_path, dicom_tls_server_name="elsewhere.test")
    series = outgoing(write_series(SeriesSpec(PATIENT, instances=1), tmp_path / "series"))
    destination.send(series)
    assert destination.missing(series) == set()


def test_a_peer_that_wants_a_client_certificate_says_so(
        peers: list[Peer], certs: Certificates, tmp_path: Path) -> None:
    peers.append(peer := Peer(certs.server, client_ca=certs.ca))
    destination = relay_to(peer, certs, tmp_path)
    series = outgoing(write_series(SeriesSpec(PATIENT, instances=1), tmp_path / "series"))
    with pytest.raises(DestinationError, match="RELAY_DICOM_TLS_CERT"):
        destination.send(series)
    assert peer.stored == {}


def pull_source(peer: Peer, certs: Certificates, tmp_path: Path) -> Pacs:
    """The collector's PACS client, built from the settings the way ingest builds it."""
    settings = load_settings(data_dir=tmp_path / "var", pacs_host="127.0.0.1",
                             pacs_port=peer.port, pacs_ae_title=PEER_AE, pacs_timeout=10,
                             dicom_tls=True, dicom_tls_ca=certs.ca,
                             dicom_tls_cert=certs.relay_client.cert,
                             dicom_tls_key=certs.relay_client.key)
    settings.ensure_dirs()
    upgrade(settings.sqlalchemy_url)
    rt = build_runtime(settings, bus=InProcessBus(RetryPolicy()))
    return Collector(settings, rt.engine, rt.vault, rt.pseudonymizer.uid).pacs


def image_query(series_uid: str) -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.SeriesInstanceUID = series_uid
    query.SOPInstanceUID = ""
    return query


def test_a_pull_source_queries_its_pacs_over_mutual_tls(
        peers: list[Peer], certs: Certificates, tmp_path: Path) -> None:
    """Worklist queries carry accession numbers and patient IDs: they go over TLS too."""
    peers.append(peer := Peer(certs.server, client_ca=certs.ca))
    peer.stored["1.2.3.4.1"] = "1.2.3.4"
    [match] = pull_source(peer, certs, tmp_path).find(image_query("1.2.3.4"))
    assert match.SOPInstanceUID == "1.2.3.4.1"


def test_a_pull_source_refuses_a_pacs_whose_certificate_does_not_verify(
        peers: list[Peer], certs: Certificates, tmp_path: Path) -> None:
    peers.append(peer := Peer(certs.self_signed_server))
    with pytest.raises(PacsError, match=r"certificate verification failed.*self-signed"):
        pull_source(peer, certs, tmp_path).find(image_query("1.2.3.4"))
