"""The relay as a DICOM node: dcmtk's storescu and echoscu send a study to the SCP of
ingest; the sender stores it in Orthanc by C-STORE and by STOW-RS and verifies both."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydicom import dcmread
from pydicom.uid import RLELossless, generate_uid

from tests.e2e.pipeline import TOKEN_ENTRY, assert_no_originals_in_orthanc, wait_for_series
from tests.services.sender.test_dicom_ae import rle_series
from tests.support.dicom_factory import Patient, SeriesSpec, write_series
from tests.support.services import (
    Orthanc,
    RelayProcess,
    answers,
    free_port,
    print_logs,
    relay_env,
    run_relay,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.orthanc,
              pytest.mark.dcmtk]
SCP_AE = "RELAY"
CALLING = "RELAYSCU"


@pytest.fixture
def network_orthanc(tmp_path: Path) -> Iterator[Orthanc]:
    server = Orthanc(tmp_path / "orthanc")
    server.modalities = {"relay": [CALLING, "127.0.0.1", free_port()]}
    server.start()
    yield server
    server.stop()


@pytest.fixture
def node(tmp_path: Path, data_dir: Path, postgres_url: str, queue_prefix: str,
         network_orthanc: Orthanc) -> Iterator[dict]:
    api_port, scp_port = free_port(), free_port()
    env = relay_env(
        {}, data_dir=data_dir, database_url=postgres_url, queue_prefix=queue_prefix,
        amqp_url="amqp://guest:guest@127.0.0.1:5672/", api_port=api_port,
        api_tokens=TOKEN_ENTRY, deid_secret="network-test-secret-0123456789",
        retry_base_delay=0.5, watch_interval=0.2, scp_port=scp_port, scp_ae_title=SCP_AE,
        scp_allowed_aes="STORESCU,ECHOSCU", stable_age=1,
        destinations="dicom,dicomweb", dicom_host="127.0.0.1",
        dicom_port=network_orthanc.dicom_port, dicom_ae_title=network_orthanc.aet,
        dicom_calling_ae_title=CALLING, dicomweb_url=f"{network_orthanc.url}/dicom-web")
    run_relay("db", "upgrade", env=env)
    procs = [RelayProcess(service, dict(env, RELAY_METRICS_PORT=str(free_port())),
                          tmp_path / f"{service}.log").start()
             for service in ("ingest", "deid", "sender", "api")]
    api_url = f"http://127.0.0.1:{api_port}"
    wait_until(lambda: answers(f"{api_url}/readyz"), 60, "the api")
    wait_until(lambda: echo(scp_port).returncode == 0, 60, "the SCP to answer C-ECHO")
    yield {"api": api_url, "scp_port": scp_port, "orthanc": network_orthanc}
    for proc in procs:
        proc.stop()
    print_logs(tmp_path.glob("*.log"))




def echo(port: int, calling: str = "ECHOSCU") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["echoscu", "-aet", calling, "-aec", SCP_AE, "127.0.0.1", str(port)],
                          capture_output=True, text=True, timeout=30)


def storescu(port: int, folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["storescu", "-aec", SCP_AE, "-xr", "+sd", "+r", "127.0.0.1",
                           str(port), str(folder)], capture_output=True, text=True, timeout=120)


def one_study_of_three_series(root: Path) -> tuple[list[SeriesSpec], list[Path]]:
    patient = Patient("MRN-5005", "Hamilton^Margaret", accession="ACC-7005")
    study = generate_uid()
    specs = [SeriesSpec(patient, study_uid=study, instances=12),
             SeriesSpec(patient, study_uid=study, instances=12, modality="MR")]
    for n, spec in enumerate(specs):
        write_series(spec, root / f"series-{n}")
    rle = rle_series(root / "series-rle", count=6)
    rle_spec = SeriesSpec(patient, study_uid=str(dcmread(rle[0]).StudyInstanceUID),
                          series_uid=str(dcmread(rle[0]).SeriesInstanceUID),
                          sop_uids=[str(dcmread(p).SOPInstanceUID) for p in rle])
    return [*specs, rle_spec], rle


def test_a_study_sent_by_storescu_reaches_done_at_orthanc(node: dict, tmp_path: Path) -> None:
    specs, rle = one_study_of_three_series(tmp_path / "study")
    result = storescu(node["scp_port"], tmp_path / "study")
    assert result.returncode == 0, result.stderr
    series = wait_for_series(node["api"], 3, {"DONE"}, timeout=300)
    assert sorted(s["image_count"] for s in series) == [6, 12, 12]
    orthanc = node["orthanc"]
    assert len(orthanc.instances()) == 30
    assert_no_originals_in_orthanc(orthanc, specs)
    originals = {dcmread(p).PixelData for p in rle}
    held = set()
    for instance_id in orthanc.instances():
        raw = httpx.get(f"{orthanc.url}/instances/{instance_id}/file", timeout=30).content
        ds = dcmread(io.BytesIO(raw))
        if ds.file_meta.TransferSyntaxUID == RLELossless:
            held.add(ds.PixelData)
    assert held == originals, "RLE pixel data changed on the way"


def test_a_calling_ae_not_on_the_allow_list_is_refused(node: dict, tmp_path: Path) -> None:
    refused = echo(node["scp_port"], calling="INTRUDER")
    assert refused.returncode != 0
    assert "Rejected" in refused.stdout + refused.stderr
    assert echo(node["scp_port"]).returncode == 0
