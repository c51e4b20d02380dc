"""`relay up` on the embedded defaults with a GCS bucket (gcp-storage-emulator on loopback)
as the only destination: every series DONE as one NIfTI volume with its sidecar, and
found by the search endpoint."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import pytest

from tests.e2e.pipeline import TOKEN_ENTRY, api_get, corpus, wait_for_series
from tests.services.sender.test_gcs import BUCKET, Emulator
from tests.support.services import (
    RelayProcess,
    answers,
    free_port,
    relay_env,
    run_relay,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.gcs]
PREFIX = "research/relay"


@pytest.fixture
def relay_to_gcs(tmp_path: Path) -> Iterator[dict]:
    emulator = Emulator(tmp_path / "emulator.log")
    api_port = free_port()
    env = relay_env({}, api_port=api_port, api_tokens=TOKEN_ENTRY, watch_interval=0.2,
                    destinations="gcs", gcs_bucket=BUCKET, gcs_endpoint=emulator.url,
                    gcs_prefix=PREFIX, gcs_format="nifti")
    workdir = tmp_path / "checkout"
    workdir.mkdir()
    proc = RelayProcess("up", env, tmp_path / "up.log", cwd=workdir).start()
    api_url = f"http://127.0.0.1:{api_port}"
    try:
        wait_until(lambda: answers(f"{api_url}/readyz", proc), 60, "relay up")
        yield {"api": api_url, "tmp": tmp_path, "env": env, "cwd": workdir,
               "emulator": emulator}
        assert proc.stop() == 0, (tmp_path / "up.log").read_text()[-3000:]
    finally:
        proc.stop()
        emulator.stop()




def test_series_reach_done_as_volumes_and_are_found(relay_to_gcs: dict) -> None:
    specs, folders = corpus(relay_to_gcs["tmp"] / "corpus", instances=20)
    for folder in folders:
        run_relay("submit", str(folder), env=relay_to_gcs["env"], cwd=relay_to_gcs["cwd"])
    series = wait_for_series(relay_to_gcs["api"], 3, {"DONE"})
    assert sorted(s["image_count"] for s in series) == [20, 20, 20]

    objects = relay_to_gcs["emulator"].objects(PREFIX + "/")
    volumes = [blob for name, blob in objects.items() if name.endswith("/series.nii.gz")]
    sidecars = [blob for name, blob in objects.items() if name.endswith("/series.json")]
    manifests = [blob for name, blob in objects.items()
                 if name.endswith("/series.manifest.json")]
    assert len(objects) == 9 and len(volumes) == len(sidecars) == len(manifests) == 3
    for blob in volumes:
        image = nib.Nifti1Image.from_bytes(gzip.decompress(blob.download_as_bytes()))
        assert image.shape == (32, 32, 20)
    identifying = {v for spec in specs for v in (*spec.original_uids(),
                                                 *spec.patient.identifying_values())}
    text = " ".join(objects) + " ".join(b.download_as_text() for b in sidecars + manifests)
    assert not [value for value in identifying if value in text]
    assert sorted(json.loads(b.download_as_text())["Modality"] for b in sidecars) == \
        ["CT", "CT", "MR"]

    # Each manifest is signed by the key the api publishes (the volumes are not its files:
    # the signature alone is checked here).
    key_id = api_get(relay_to_gcs["api"], "/api/v1/signing-key")["key_id"]
    manifest = relay_to_gcs["tmp"] / "series.manifest.json"
    manifest.write_bytes(manifests[0].download_as_bytes())
    checked = run_relay("verify", str(manifest), "--key-id", key_id, env=relay_to_gcs["env"],
                        cwd=relay_to_gcs["cwd"])
    assert f"manifest verified: signature by key {key_id}" in checked.stdout

    found = api_get(relay_to_gcs["api"], "/api/v1/search?modality=CT&format=nifti")
    assert found["total"] == 2
    assert {hit["status"] for hit in found["items"]} == {"DONE"}
    assert all(hit["location"].startswith(f"gs://{BUCKET}/{PREFIX}/") for hit in found["items"])
    assert api_get(relay_to_gcs["api"], "/api/v1/search?modality=MR")["total"] == 1
