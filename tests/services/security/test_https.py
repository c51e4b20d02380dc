"""The Orthanc destination over HTTPS, against a small Orthanc look-alike on loopback whose
certificate comes from the test CA: it works when RELAY_TLS_CA_BUNDLE names that CA,
fails with an error naming the verification failure when it does not, and works with
RELAY_TLS_VERIFY=false, which the sender warns about when it starts."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI, Request
from pydicom import dcmread

from relay_sender import main as sender
from relay_sender.destinations import DestinationError, OutgoingInstance, OutgoingSeries
from relay_sender.orthanc import OrthancDestination
from relay_shared.bus import InProcessBus, RetryPolicy
from relay_shared.db import upgrade
from relay_shared.runtime import build_runtime
from relay_shared.settings import Settings, load_settings
from tests.services.security.conftest import Certificates
from tests.support.dicom_factory import Patient, SeriesSpec, write_series
from tests.support.services import free_port, wait_until

PATIENT = Patient("MRN-7007", "Noether^Emmy")


def orthanc_app(held: dict[str, str]) -> FastAPI:
    """POST /instances and POST /tools/find, as much of Orthanc as the destination uses."""
    app = FastAPI()

    @app.post("/instances")
    async def store(request: Request) -> dict[str, str]:
        ds = dcmread(BytesIO(await request.body()), stop_before_pixels=True)
        held[str(ds.SOPInstanceUID)] = str(ds.SeriesInstanceUID)
        return {"Status": "Success"}

    @app.post("/tools/find")
    async def find(request: Request) -> list[dict[str, object]]:
        series = (await request.json())["Query"]["SeriesInstanceUID"]
        return [{"MainDicomTags": {"SOPInstanceUID": sop}}
                for sop, of_series in held.items() if of_series == series]

    return app


@pytest.fixture(scope="module")
def https_orthanc(certs: Certificates) -> Iterator[tuple[str, dict[str, str]]]:
    held: dict[str, str] = {}
    port = free_port()
    config = uvicorn.Config(orthanc_app(held), host="127.0.0.1", port=port, log_config=None,
                            access_log=False, lifespan="off", ssl_certfile=str(certs.server.cert),
                            ssl_keyfile=str(certs.server.key))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 20, "the HTTPS Orthanc look-alike")
    yield f"https://127.0.0.1:{port}", held
    server.should_exit = True
    thread.join(10)


def settings_for(url: str, tmp_path: Path, **tls: object) -> Settings:
    return load_settings(data_dir=tmp_path / "var", orthanc_url=url, http_timeout=10, **tls)


def orthanc(settings: Settings) -> OrthancDestination:
    [destination] = sender.build_destinations(settings)
    assert isinstance(destination, OrthancDestination)
    return destination


def outgoing(tmp_path: Path) -> OutgoingSeries:
    paths = write_series(SeriesSpec(PATIENT, instances=3), tmp_path / "series")
    headers = [dcmread(p, stop_before_pixels=True) for p in paths]
    return OutgoingSeries(1, str(headers[0].StudyInstanceUID), str(headers[0].SeriesInstanceUID),
                          [OutgoingInstance(n, str(h.SOPInstanceUID), p)
                           for n, (h, p) in enumerate(zip(headers, paths, strict=True))])


def test_the_configured_ca_bundle_verifies_the_server(
        https_orthanc: tuple[str, dict[str, str]], certs: Certificates, tmp_path: Path) -> None:
    url, _held = https_orthanc
    destination = orthanc(settings_for(url, tmp_path, tls_ca_bundle=certs.ca))
    series = outgoing(tmp_path)
    destination.send(series)
    assert destination.missing(series) == set()


def test_without_the_ca_the_server_is_refused_with_the_reason(
        https_orthanc: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, held = https_orthanc
    destination = orthanc(settings_for(url, tmp_path))
    series = outgoing(tmp_path)
    with pytest.raises(DestinationError) as refused:
        destination.send(series)
    message = str(refused.value)
    assert message.startswith("orthanc: certificate verification failed: "
                              "unable to get local issuer certificate"), message
    assert "RELAY_TLS_CA_BUNDLE" in message
    with pytest.raises(DestinationError, match="certificate verification failed"):
        destination.missing(series)
    assert not set(held) & {i.sop_instance_uid for i in series.instances}


async def test_verification_off_works_and_the_sender_warns_at_start(
        https_orthanc: tuple[str, dict[str, str]], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    url, _held = https_orthanc
    settings = settings_for(url, tmp_path, tls_verify=False)
    destination = orthanc(settings)
    series = outgoing(tmp_path)
    await asyncio.to_thread(destination.send, series)
    assert await asyncio.to_thread(destination.missing, series) == set()

    caplog.set_level(logging.WARNING, logger="relay_shared.tlsconfig")
    settings.ensure_dirs()
    upgrade(settings.sqlalchemy_url)
    rt = build_runtime(settings, bus=InProcessBus(RetryPolicy(max_attempts=1)))
    stop = asyncio.Event()
    stop.set()
    await sender.run(rt, stop)
    warnings = [r.getMessage() for r in caplog.records if r.name == "relay_shared.tlsconfig"]
    assert warnings == ["RELAY_TLS_VERIFY=false: HTTPS certificates are not verified"]
