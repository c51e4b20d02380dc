"""The dicom destination proving receipt by storage commitment, against a real Orthanc,
which answers each N-ACTION with an N-EVENT-REPORT on an association it opens back to
the relay's listener."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from relay_sender.commitment import CommittedDicomDestination
from relay_sender.destinations import DestinationError
from relay_sender.handlers import SendContext, send_series
from relay_sender.main import build_destinations
from relay_shared.models import Series, Status
from relay_shared.settings import SettingsError, load_settings
from tests.services.api.seed import make_runtime
from tests.services.sender.test_dicom_ae import PATIENT, outgoing
from tests.services.sender.test_gcs import ct_series, through_deid
from tests.support.dicom_factory import SeriesSpec, write_series
from tests.support.services import Orthanc, free_port

RELAY_AE = "RELAYCOMMIT"


@pytest.fixture(scope="module")
def listen_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def committing_orthanc(tmp_path_factory: pytest.TempPathFactory,
                       listen_port: int) -> Iterator[Orthanc]:
    """An Orthanc that knows the relay's AE at its commitment listener."""
    server = Orthanc(tmp_path_factory.mktemp("orthanc-commitment"),
                     modalities={"relay": [RELAY_AE, "127.0.0.1", listen_port]}).start()
    yield server
    server.stop()


@pytest.fixture
def destination(committing_orthanc: Orthanc,
                listen_port: int) -> Iterator[CommittedDicomDestination]:
    committing_orthanc.clear()
    dest = CommittedDicomDestination("127.0.0.1", committing_orthanc.dicom_port,
                                     committing_orthanc.aet, RELAY_AE, timeout=30,
                                     listen_port=listen_port, commitment_timeout=30)
    yield dest
    dest.close()


@pytest.mark.orthanc
def test_every_instance_sent_is_committed(destination: CommittedDicomDestination,
                                          tmp_path: Path) -> None:
    series = outgoing(write_series(SeriesSpec(PATIENT, instances=5), tmp_path / "s"))
    destination.send(series)
    assert destination.missing(series) == set()


@pytest.mark.orthanc
def test_an_instance_the_archive_lost_is_not_committed(
        destination: CommittedDicomDestination, committing_orthanc: Orthanc,
        tmp_path: Path) -> None:
    series = outgoing(write_series(SeriesSpec(PATIENT, instances=3), tmp_path / "s"))
    assert destination.missing(series) == {i.sop_instance_uid for i in series.instances}
    destination.send(series)
    lost = series.instances[1].sop_instance_uid
    (found,) = httpx.post(f"{committing_orthanc.url}/tools/lookup", content=lost,
                          timeout=30).json()
    httpx.delete(f"{committing_orthanc.url}/instances/{found['ID']}", timeout=30)
    assert destination.missing(series) == {lost}


@pytest.mark.orthanc
def test_no_report_is_a_retryable_error(committing_orthanc: Orthanc, tmp_path: Path) -> None:
    """The archive reports to a listener nobody runs: the relay, listening elsewhere,
    gives up after its timeout instead of cleaning up."""
    dest = CommittedDicomDestination("127.0.0.1", committing_orthanc.dicom_port,
                                     committing_orthanc.aet, RELAY_AE, timeout=10,
                                     listen_port=free_port(), commitment_timeout=3)
    series = outgoing(write_series(SeriesSpec(PATIENT, instances=1), tmp_path / "s"))
    try:
        with pytest.raises(DestinationError, match="no storage commitment report"):
            dest.missing(series)
    finally:
        dest.close()


@pytest.mark.orthanc
def test_a_series_is_done_once_committed(committing_orthanc: Orthanc, listen_port: int,
                                         tmp_path: Path) -> None:
    committing_orthanc.clear()
    rt = make_runtime(tmp_path / "var", destinations="dicom", dicom_host="127.0.0.1",
                      dicom_port=committing_orthanc.dicom_port,
                      dicom_ae_title=committing_orthanc.aet, dicom_calling_ae_title=RELAY_AE,
                      dicom_verify="commitment", dicom_commitment_port=listen_port)
    ct_series(tmp_path / "ct", instances=4)
    series_id = through_deid(rt, tmp_path / "ct")
    (dest,) = build_destinations(rt.settings, rt.engine)
    assert isinstance(dest, CommittedDicomDestination)
    try:
        send_series(SendContext(rt.engine, rt.store, [dest]), series_id)
    finally:
        dest.close()
    with Session(rt.engine) as session:
        assert session.get(Series, series_id).status is Status.DONE  # type: ignore[union-attr]
    assert len(committing_orthanc.instances()) == 4


def test_commitment_is_refused_over_tls() -> None:
    with pytest.raises(SettingsError, match="RELAY_DICOM_VERIFY=commitment"):
        load_settings(dicom_verify="commitment", dicom_tls=True)
    with pytest.raises(SettingsError, match="RELAY_DICOM_VERIFY"):
        load_settings(dicom_verify="echo")
