"""Helpers for end-to-end runs: a corpus of series, polling the API, checking Orthanc."""

from __future__ import annotations

from pathlib import Path

import httpx
from pydicom import dcmread

from relay_api.auth import hash_token
from tests.support.dicom_factory import Patient, SeriesSpec, write_series
from tests.support.services import wait_until

TOKEN = "e2e-reader-token"
TOKEN_ENTRY = f"reader:{hash_token(TOKEN)}"
OPERATOR_TOKEN = "e2e-operator-token"
OPERATOR_ENTRY = f"operator:{hash_token(OPERATOR_TOKEN)}"


def corpus(root: Path, instances: int = 20) -> tuple[list[SeriesSpec], list[Path]]:
    """Three series of two patients: two studies of the first, one of the second."""
    alice = Patient("MRN-1001", "Lovelace^Ada", accession="ACC-7001")
    bob = Patient("MRN-2002", "Babbage^Charles", birth_date="19450102", accession="ACC-7002")
    specs = [SeriesSpec(alice, instances=instances), SeriesSpec(alice, instances=instances),
             SeriesSpec(bob, instances=instances, modality="MR")]
    folders = []
    for n, spec in enumerate(specs):
        folder = root / f"series-{n}"
        write_series(spec, folder)
        folders.append(folder)
    return specs, folders


def api_get(api_url: str, path: str, token: str = TOKEN) -> dict:
    response = httpx.get(f"{api_url}{path}", headers={"Authorization": f"Bearer {token}"},
                         timeout=10)
    response.raise_for_status()
    return dict(response.json())


def wait_for_series(api_url: str, count: int, statuses: set[str], timeout: float = 240
                    ) -> list[dict]:
    found: list[dict] = []

    def ready() -> bool:
        nonlocal found
        try:
            found = api_get(api_url, "/api/v1/series?limit=500")["items"]
        except httpx.HTTPError:
            return False
        return len(found) >= count and all(s["status"] in statuses for s in found)

    wait_until(ready, timeout, f"{count} series to reach {statuses}", interval=0.5)
    return found


def assert_no_originals_in_orthanc(orthanc, specs: list[SeriesSpec]) -> None:  # type: ignore[no-untyped-def]
    originals = set()
    for spec in specs:
        originals.update(spec.original_uids())
        originals.update(v for v in spec.patient.identifying_values())
    for instance_id in orthanc.instances():
        tags = orthanc.instance_tags(instance_id)
        for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "SeriesInstanceUID",
                        "SOPInstanceUID", "AccessionNumber", "InstitutionName"):
            assert str(tags.get(keyword, "")) not in originals, keyword


def assert_outbox_clean(outbox: Path, specs: list[SeriesSpec], expected: int) -> None:
    files = sorted(outbox.rglob("*.dcm"))
    assert len(files) == expected
    originals = {v for spec in specs for v in (*spec.original_uids(),
                                               *spec.patient.identifying_values())}
    for path in files:
        ds = dcmread(path)
        for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "SeriesInstanceUID",
                        "SOPInstanceUID", "AccessionNumber"):
            assert str(ds.get(keyword, "")) not in originals, keyword
        assert ds.PixelData  # the pixel data came through
