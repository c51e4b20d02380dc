"""The collector's DICOM side against a real Orthanc: C-FIND at both levels, C-GET into
a finished folder, and the errors of a PACS that does not answer."""

from __future__ import annotations

import io
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from relay_ingest.handlers import is_finished
from relay_ingest.origin import OriginSeal
from relay_ingest.pacs import Pacs, PacsError, RateLimit
from relay_shared.dicomfiles import SizeLimits
from tests.support.dicom_factory import Patient, SeriesSpec, make_instance
from tests.support.services import Orthanc, free_port

pytestmark = [pytest.mark.orthanc]


@pytest.fixture
def pacs_server(tmp_path: Path) -> Iterator[Orthanc]:
    server = Orthanc(tmp_path / "pacs", aet="CLINICAL")
    server.modalities = {"relay": ["RELAY", "127.0.0.1", free_port()]}
    server.start()
    yield server
    server.stop()


def _pacs(server: Orthanc, port: int | None = None) -> Pacs:
    return Pacs("127.0.0.1", port or server.dicom_port, server.aet, "RELAY", timeout=10,
                limit=RateLimit(50), sealer=OriginSeal(b"collector-test-secret"))


def _store(server: Orthanc, spec: SeriesSpec) -> None:
    for index in range(spec.instances):
        buffer = io.BytesIO()
        make_instance(spec, index).save_as(buffer, enforce_file_format=True)
        httpx.post(f"{server.url}/instances", content=buffer.getvalue(),
                   timeout=30).raise_for_status()


def test_find_then_get_lands_a_finished_folder(pacs_server: Orthanc, tmp_path: Path) -> None:
    spec = SeriesSpec(Patient("MRN-5005", "Testperson^Five", accession="ACC-5005"), instances=3)
    _store(pacs_server, spec)
    pacs = _pacs(pacs_server)
    query = Dataset()
    query.QueryRetrieveLevel, query.AccessionNumber, query.StudyInstanceUID = "STUDY", \
        "ACC-5005", ""
    (study,) = pacs.find(query)
    assert study.StudyInstanceUID == spec.study_uid

    incoming = tmp_path / "incoming"
    result = pacs.get(spec.study_uid, incoming, "collect-1")
    assert (result.completed, result.failed) == (3, 0)
    (folder,) = incoming.iterdir()
    assert folder.name == "collect-1" and is_finished(folder)
    assert sorted(dcmread(p).SOPInstanceUID for p in folder.glob("*.dcm")) == sorted(spec.sop_uids)


def test_a_pacs_that_is_not_there_is_a_pacs_error(pacs_server: Orthanc) -> None:
    with pytest.raises(PacsError, match="refused or did not answer"):
        _pacs(pacs_server, port=free_port()).move("1.2.3", "RELAY")


@pytest.mark.timeout(120)
def test_a_pacs_sending_an_instance_past_the_cap_costs_no_memory_and_loses_the_rest(
        tmp_path: Path) -> None:
    port, large_mib = free_port(), 256
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.support.oversized_pacs", str(port), str(large_mib)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[3])
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        pacs = Pacs("127.0.0.1", port, "OVERSIZED", "RELAY", timeout=30, limit=RateLimit(50),
                    limits=SizeLimits(instance_bytes=16 * 1024 * 1024),
                    sealer=OriginSeal(b"collector-test-secret"))
        incoming = tmp_path / "incoming"
        tracemalloc.start()
        try:
            result = pacs.get("1.2.3", incoming, "collect-2")  # it sends what it has
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait(timeout=30)
    assert (result.completed, result.failed) == (1, 1)
    assert peak < 32 * 1024 * 1024, f"{peak / 2**20:.0f} MiB held for a refused instance"
    (folder,) = incoming.iterdir()
    # The ordinary instance, whole; nothing of the large one.
    assert [int(dcmread(p).InstanceNumber) for p in folder.glob("*.dcm")] == [1]
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(".dcm")) == \
        [".relay-origin.json"]
