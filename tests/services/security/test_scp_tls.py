"""The SCP over TLS with client certificates required: dcmtk's storescu gets in with a
certificate from the CA that names its AE title, and is turned away, with the failing
link logged, when its certificate is self-signed, chained to another CA, or missing."""

from __future__ import annotations

import asyncio
import logging
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from relay_ingest import scp
from relay_shared import tlsconfig
from relay_shared.settings import Settings, load_settings
from tests.services.security.conftest import Certificates
from tests.support.certs import Leaf, Pki
from tests.support.dicom_factory import Patient, SeriesSpec, write_series
from tests.support.services import free_port
from tests.support.tools import needs_tool

PATIENT = Patient("MRN-5005", "Franklin^Rosalind")
AE_TITLE = "RELAYTLS"
needs_dcmtk = needs_tool("storescu", "dcmtk")


@pytest.fixture
async def tls_scp(data_dir: Path, certs: Certificates) -> AsyncIterator[Callable[..., object]]:
    running: list[tuple[asyncio.Task[None], asyncio.Event]] = []

    async def start(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "data_dir": data_dir, "scp_port": free_port(), "stable_age": 0.5,
            "scp_ae_title": AE_TITLE, "scp_tls_cert": certs.server.cert,
            "scp_tls_key": certs.server.key, "scp_tls_ca": certs.ca,
            "scp_tls_require_client_cert": True, "scp_allowed_aes": "STORESCU"}
        settings = load_settings(**(values | overrides))
        settings.ensure_dirs()
        stop = asyncio.Event()
        running.append((asyncio.create_task(scp.serve(settings, stop)), stop))
        await asyncio.sleep(0.3)
        return settings

    yield start
    for task, stop in running:
        stop.set()
        await task


def storescu(port: int, files: list[Path], ca: Path, leaf: Leaf | None,
             calling: str = "STORESCU") -> subprocess.CompletedProcess[str]:
    identity = ["+tls", str(leaf.key), str(leaf.cert)] if leaf else ["+tla"]
    command = ["storescu", *identity, "-pw", "+cf", str(ca), "-aet", calling, "-aec", AE_TITLE,
               "127.0.0.1", str(port), *map(str, files)]
    if leaf is None:
        command.remove("-pw")  # no key, so no password option
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def received(settings: Settings) -> list[Path]:
    assert settings.incoming_dir is not None and settings.staging_dir is not None
    return [p for root in (settings.incoming_dir, settings.staging_dir)
            for p in root.rglob("*.dcm")]


async def wait_for(settings: Settings, count: int, timeout: float = 20) -> list[Path]:
    for _ in range(int(timeout * 10)):
        if len(found := received(settings)) >= count:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(received(settings))} of {count} instances received")


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.getMessage()}: {getattr(r, 'reason', '')}" for r in caplog.records
            if r.name == "relay_ingest.scp" and r.levelno >= logging.WARNING]


@pytest.mark.dcmtk
@needs_dcmtk
async def test_storescu_with_a_certificate_from_the_ca_stores_over_tls(
        tls_scp: Callable[..., object], certs: Certificates, tmp_path: Path) -> None:
    settings = await tls_scp()  # type: ignore[misc]
    files = write_series(SeriesSpec(PATIENT, instances=3), tmp_path / "series")
    result = await asyncio.to_thread(storescu, settings.scp_port, files, certs.ca, certs.client)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(await wait_for(settings, 3)) == 3


@pytest.mark.dcmtk
@needs_dcmtk
@pytest.mark.parametrize(("which", "link"), [
    ("self_signed", "the peer's own certificate is self-signed"),
    ("rogue_client", "the issuer of the peer's certificate is unknown"),
    (None, "PEER_DID_NOT_RETURN_A_CERTIFICATE"),
])
async def test_storescu_without_a_good_client_certificate_is_refused(
        tls_scp: Callable[..., object], certs: Certificates, tmp_path: Path,
        caplog: pytest.LogCaptureFixture, which: str | None, link: str) -> None:
    caplog.set_level(logging.WARNING, logger="relay_ingest.scp")
    settings = await tls_scp()  # type: ignore[misc]
    files = write_series(SeriesSpec(PATIENT, instances=1), tmp_path / "series")
    leaf = getattr(certs, which) if which else None
    result = await asyncio.to_thread(storescu, settings.scp_port, files, certs.ca, leaf)
    assert result.returncode != 0
    await asyncio.sleep(0.5)
    assert received(settings) == []
    [line] = refusals(caplog)
    assert line.startswith("TLS connection refused") and link in line, line
    if which:
        assert "not a CA in RELAY_SCP_TLS_CA" in line


def _echo(port: int, certs: Certificates, leaf: Leaf, calling: str) -> AE:
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.load_cert_chain(str(leaf.cert), str(leaf.key))
    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    return ae.associate("127.0.0.1", port, ae_title=AE_TITLE, tls_args=(context, "localhost"))


async def test_a_good_certificate_must_name_the_calling_ae(
        tls_scp: Callable[..., object], certs: Certificates,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="relay_ingest.scp")
    settings = await tls_scp(scp_allowed_aes="STORESCU,RELAY")  # type: ignore[misc]
    # RELAY is allowed, but this certificate names STORESCU only.
    assoc = await asyncio.to_thread(_echo, settings.scp_port, certs, certs.client, "RELAY")
    assert assoc.is_rejected
    assert any("does not name the calling AE" in line for line in refusals(caplog))
    assoc = await asyncio.to_thread(_echo, settings.scp_port, certs, certs.client, "STORESCU")
    assert assoc.is_established
    assert int(assoc.send_c_echo().Status) == 0
    assoc.release()


async def test_plain_dicom_is_not_answered_by_a_tls_scp(tls_scp: Callable[..., object]) -> None:
    settings = await tls_scp()  # type: ignore[misc]
    ae = AE(ae_title="STORESCU")
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.network_timeout = 5
    assoc = await asyncio.to_thread(ae.associate, "127.0.0.1", settings.scp_port,
                                    ae_title=AE_TITLE)
    assert not assoc.is_established


@needs_dcmtk
@pytest.mark.parametrize("profile", ["bcp195-nd", "aes"])
async def test_a_sender_that_knows_only_the_aes_profile_gets_in_when_the_scp_offers_it(
        tls_scp: Callable[..., object], certs: Certificates, tmp_path: Path,
        profile: str) -> None:
    """Mirth Connect's DICOM Sender (dcm4che2) offers TLS_RSA_WITH_AES_128_CBC_SHA and
    nothing else; dcmtk's retired AES profile offers the same."""
    server = Pki(tmp_path / "ca").issue("server", "relay.test", rsa_key=True)
    settings = await tls_scp(scp_tls_require_client_cert=False, scp_allowed_aes="",
                             scp_tls_profile=profile, scp_tls_cert=server.cert,
                             scp_tls_key=server.key, scp_tls_ca=None)  # type: ignore[operator]
    files = write_series(SeriesSpec(PATIENT, instances=1), tmp_path / "series")
    command = ["storescu", "+tla", "+pa", "+cf", str(tmp_path / "ca" / "ca.pem"), "-aet", "MIRTH",
               "-aec", AE_TITLE, "127.0.0.1", str(settings.scp_port), *map(str, files)]
    result = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True,
                                     timeout=60)
    if profile == "aes":
        assert result.returncode == 0, result.stderr
        assert len(await wait_for(settings, 1)) == 1
    else:
        assert result.returncode != 0 and not received(settings)


def test_the_aes_profile_keeps_the_modern_suites_first(data_dir: Path, tmp_path: Path) -> None:
    server = Pki(tmp_path / "ca").issue("server", "relay.test", rsa_key=True)
    settings = load_settings(data_dir=data_dir, scp_tls_cert=server.cert,
                             scp_tls_key=server.key, scp_tls_profile="aes")
    context = tlsconfig.scp_context(settings)
    assert context is not None
    names = [c["name"] for c in context.get_ciphers()]
    assert names[-1] == "AES128-SHA" and names.index("ECDHE-RSA-AES128-GCM-SHA256") < len(names) - 1


def test_the_aes_profile_with_a_key_it_cannot_use_stops_start_up(certs: Certificates,
                                                                 data_dir: Path) -> None:
    settings = load_settings(data_dir=data_dir, scp_tls_cert=certs.server.cert,
                             scp_tls_key=certs.server.key, scp_tls_profile="aes")
    with pytest.raises(tlsconfig.TlsConfigError, match="needs an RSA certificate"):
        tlsconfig.scp_context(settings)
