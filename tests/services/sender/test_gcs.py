"""The GCS destination against gcp-storage-emulator on loopback: a CT series through
ingest and deid into the bucket as one NIfTI volume with its sidecar, resends that
change nothing, DICOM files and the fallbacks, and the search over what was sent."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from google.api_core import exceptions as google_errors
from google.cloud import storage
from pydicom import dcmread
from sqlmodel import Session, select

from relay_deid.handlers import DeidContext, deidentify_series
from relay_ingest.handlers import claim, ingest_claimed
from relay_sender.destinations import DestinationError, OutgoingInstance, OutgoingSeries
from relay_sender.gcs import GcsDestination, make_client
from relay_sender.handlers import SendContext, send_series
from relay_sender.main import build_destinations
from relay_shared.deid import DeidConfig
from relay_shared.models import Event, Image, Series, SeriesMetadata, Status
from relay_shared.runtime import Runtime
from tests.services.api.seed import client, make_runtime
from tests.services.sender.test_nifti import ct_slices, expected_ras_affine, save
from tests.support.dicom_factory import Patient, SeriesSpec
from tests.support.services import end, free_port, port_open, wait_until

BUCKET = "relay-research"
PATIENT = Patient("MRN-6006", "Lamarr^Hedy", accession="ACC-6006")
FIELDS = "Modality,BodyPartExamined,SliceThickness,PixelSpacing,PatientID,StudyInstanceUID," \
         "StudyDate"


class Emulator:
    """gcp-storage-emulator in memory on a free loopback port, with the test bucket."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        script = Path(sys.executable).with_name("gcp-storage-emulator")
        self._log = open(log, "wb")  # noqa: SIM115 - lives as long as the emulator
        self.process = subprocess.Popen(
            [str(script), "start", "--host", "127.0.0.1", "--port", str(self.port),
             "--in-memory", "--default-bucket", BUCKET],
            stdout=self._log, stderr=subprocess.STDOUT)
        wait_until(self._answers, 30, "gcp-storage-emulator")

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"the emulator exited with {self.process.returncode}")
        return port_open(self.port)

    def client(self) -> storage.Client:
        return make_client(self.url)

    def objects(self, prefix: str) -> dict[str, storage.Blob]:
        return {b.name: b for b in self.client().list_blobs(BUCKET, prefix=prefix)}

    def stop(self) -> None:
        end(self.process)
        self._log.close()


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    server = Emulator(tmp_path_factory.mktemp("gcs") / "emulator.log")
    yield server
    server.stop()


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def relay(tmp_path: Path, emulator: Emulator, prefix: str, fmt: str = "nifti") -> Runtime:
    return make_runtime(tmp_path / "var", destinations="gcs", gcs_bucket=BUCKET,
                        gcs_endpoint=emulator.url, gcs_prefix=prefix, gcs_format=fmt,
                        gcs_sidecar_fields=FIELDS)


def ct_series(folder: Path, instances: int = 20) -> SeriesSpec:
    spec = SeriesSpec(PATIENT, instances=instances, rows=32, columns=28)
    slices = ct_slices(spec)
    for ds in slices:
        ds.BodyPartExamined = "CHEST"
    save(slices, folder)
    return spec


def through_ingest(rt: Runtime, folder: Path) -> int:
    """Ingest one series folder the way the services do."""
    incoming = rt.settings.incoming_dir
    assert incoming is not None
    copy = incoming / folder.name
    shutil.copytree(folder, copy)
    (series_id,) = ingest_claimed(claim(copy, rt.store), rt.engine, rt.store,
                                  rt.pseudonymizer.uid, rt.settings.deid_queue)
    return series_id


def through_deid(rt: Runtime, folder: Path) -> int:
    """Ingest and de-identify one series folder the way the services do."""
    series_id = through_ingest(rt, folder)
    config = DeidConfig.from_settings(rt.settings.deid_options, None)
    deidentify_series(DeidContext(rt.engine, rt.store, rt.pseudonymizer, config,
                                  rt.settings.send_queue, rt.vault), series_id)
    return series_id


def outgoing(rt: Runtime, series_id: int) -> OutgoingSeries:
    with Session(rt.engine) as session:
        images = list(session.exec(select(Image).where(Image.series_id == series_id)))
    instances = []
    for image in images:
        assert image.id is not None
        path = rt.store.deidentified(series_id, image.id)
        instances.append(OutgoingInstance(image.id, str(dcmread(path).SOPInstanceUID), path))
    header = dcmread(instances[0].path, stop_before_pixels=True)
    return OutgoingSeries(series_id, str(header.StudyInstanceUID),
                          str(header.SeriesInstanceUID), instances)


def destination(rt: Runtime) -> GcsDestination:
    (built,) = build_destinations(rt.settings, rt.engine)
    assert isinstance(built, GcsDestination)
    return built


def generations(emulator: Emulator, prefix: str) -> dict[str, int | None]:
    return {name: blob.generation for name, blob in emulator.objects(prefix).items()}


@pytest.mark.gcs
def test_a_ct_series_arrives_as_one_volume_with_its_sidecar(
        tmp_path: Path, emulator: Emulator, prefix: str) -> None:
    rt = relay(tmp_path, emulator, prefix)
    spec = ct_series(tmp_path / "ct")
    original_paths = sorted((tmp_path / "ct").iterdir())
    series_id = through_deid(rt, tmp_path / "ct")
    series = outgoing(rt, series_id)
    base = f"{prefix}/{dcmread(series.instances[0].path).PatientID}/" \
           f"{series.study_instance_uid}/{series.series_instance_uid}/"
    send_series(SendContext(rt.engine, rt.store, [destination(rt)]), series_id)

    objects = emulator.objects(prefix)
    assert sorted(objects) == [base + "series.json", base + "series.nii.gz"]
    volume = nib.Nifti1Image.from_bytes(gzip.decompress(
        objects[base + "series.nii.gz"].download_as_bytes()))
    assert volume.shape == (28, 32, 20)
    # The geometry of the files as they came in: de-identification leaves it alone.
    np.testing.assert_allclose(volume.affine, expected_ras_affine(original_paths), atol=1e-4)

    sidecar = json.loads(objects[base + "series.json"].download_as_bytes())
    assert set(sidecar) == set(FIELDS.split(","))
    assert sidecar["Modality"] == "CT" and sidecar["BodyPartExamined"] == "CHEST"
    assert sidecar["PixelSpacing"] == [0.7, 0.6] and sidecar["SliceThickness"] == 1.25
    assert sidecar["StudyInstanceUID"] == series.study_instance_uid
    assert sidecar["StudyDate"] != spec.study_date  # shifted
    assert_nothing_identifying(json.dumps(sidecar) + " ".join(objects), spec)
    with Session(rt.engine) as session:
        assert session.get(Series, series_id).status is Status.DONE  # type: ignore[union-attr]


def assert_nothing_identifying(text: str, spec: SeriesSpec) -> None:
    for value in (*spec.patient.identifying_values(), *spec.original_uids(),
                  spec.patient.birth_date):
        assert value not in text


@pytest.mark.gcs
def test_a_repeated_send_changes_nothing(tmp_path: Path, emulator: Emulator,
                                         prefix: str) -> None:
    rt = relay(tmp_path, emulator, prefix)
    ct_series(tmp_path / "ct", instances=6)
    series = outgoing(rt, through_deid(rt, tmp_path / "ct"))
    dest = destination(rt)
    assert dest.missing(series) == {i.sop_instance_uid for i in series.instances}
    dest.send(series)
    before = generations(emulator, prefix)
    dest.send(series)
    destination(rt).send(series)  # another sender process, after a restart
    assert generations(emulator, prefix) == before
    assert dest.missing(series) == set()
    with Session(rt.engine) as session:
        assert len(list(session.exec(select(SeriesMetadata)))) == 1


@pytest.mark.gcs
def test_dicom_files_are_verified_one_by_one(tmp_path: Path, emulator: Emulator,
                                             prefix: str) -> None:
    rt = relay(tmp_path, emulator, prefix, fmt="dicom")
    ct_series(tmp_path / "ct", instances=5)
    series = outgoing(rt, through_deid(rt, tmp_path / "ct"))
    dest = destination(rt)
    dest.send(series)
    objects = emulator.objects(prefix)
    assert len(objects) == 6 and sum(name.endswith(".dcm") for name in objects) == 5
    lost = series.instances[2]
    lost_name = next(name for name in objects if lost.sop_instance_uid in name)
    objects[lost_name].delete()
    before = generations(emulator, prefix)
    assert dest.missing(series) == {lost.sop_instance_uid}
    dest.send(series)
    after = generations(emulator, prefix)
    assert {n: g for n, g in after.items() if n != lost_name} == before
    assert objects[lost_name].download_as_bytes() == lost.path.read_bytes()


@pytest.mark.gcs
def test_a_single_image_goes_as_dicom_with_the_reason(tmp_path: Path, emulator: Emulator,
                                                       prefix: str) -> None:
    rt = relay(tmp_path, emulator, prefix)
    ct_series(tmp_path / "one", instances=1)
    series_id = through_deid(rt, tmp_path / "one")
    series = outgoing(rt, series_id)
    dest = destination(rt)
    dest.send(series)
    objects = emulator.objects(prefix)
    assert sorted(name.rsplit("/", 1)[1] for name in objects) == \
        sorted([f"{series.instances[0].sop_instance_uid}.dcm", "series.json"])
    sidecar = next(blob for name, blob in objects.items() if name.endswith("series.json"))
    assert sidecar.metadata == {"relay-format": "dicom", "relay-fallback": "a single image"}
    assert dest.missing(series) == set()
    with Session(rt.engine) as session:
        row = session.exec(select(SeriesMetadata)).one()
        assert (row.format, row.fallback_reason) == ("dicom", "a single image")
        assert session.exec(select(Event).where(Event.kind == "gcs-as-dicom")).one().detail \
            == "a single image"


@pytest.mark.gcs
def test_different_content_under_the_same_name_is_never_replaced(
        tmp_path: Path, emulator: Emulator, prefix: str) -> None:
    rt = relay(tmp_path, emulator, prefix, fmt="dicom")
    ct_series(tmp_path / "ct", instances=2)
    series = outgoing(rt, through_deid(rt, tmp_path / "ct"))
    dest = destination(rt)
    dest.send(series)
    name = next(n for n in emulator.objects(prefix) if n.endswith(".dcm"))
    emulator.client().bucket(BUCKET).blob(name).upload_from_string(b"something else")
    before = generations(emulator, prefix)
    with pytest.raises(DestinationError, match="different content"):
        dest.send(series)
    assert generations(emulator, prefix) == before


@pytest.mark.gcs
@pytest.mark.parametrize("same", [True, False])
def test_an_upload_that_loses_a_race_is_checked_by_checksum(
        tmp_path: Path, emulator: Emulator, prefix: str, monkeypatch: pytest.MonkeyPatch,
        same: bool) -> None:
    """Another writer stored the object between the listing and the upload: the
    precondition fails (the emulator does not check preconditions, so it is made to),
    and what is there decides."""
    rt = relay(tmp_path, emulator, prefix, fmt="dicom")
    ct_series(tmp_path / "ct", instances=1)
    series = outgoing(rt, through_deid(rt, tmp_path / "ct"))
    dest = destination(rt)
    dest.send(series)
    if not same:
        name = next(n for n in emulator.objects(prefix) if n.endswith(".dcm"))
        emulator.client().bucket(BUCKET).blob(name).upload_from_string(b"other")
    monkeypatch.setattr(dest, "_list", lambda base: {})

    def refuse(*args: object, **kwargs: object) -> None:
        raise google_errors.PreconditionFailed("conditionNotMet")

    monkeypatch.setattr(storage.Blob, "upload_from_string", refuse)
    if same:
        dest.send(series)
    else:
        with pytest.raises(DestinationError, match="different content"):
            dest.send(series)


def test_an_unreachable_bucket_is_a_retryable_error(tmp_path: Path) -> None:
    dest = GcsDestination(make_client(f"http://127.0.0.1:{free_port()}"), BUCKET, timeout=2)
    paths = save(ct_slices(SeriesSpec(PATIENT, instances=1)), tmp_path / "one")
    series = OutgoingSeries(1, "2.25.1", "2.25.2", [OutgoingInstance(1, "2.25.3", paths[0])])
    with pytest.raises(DestinationError, match="gcs listing failed"):
        dest.missing(series)


@pytest.mark.gcs
def test_search_finds_what_was_sent(tmp_path: Path, emulator: Emulator, prefix: str) -> None:
    rt = relay(tmp_path, emulator, prefix)
    ct_series(tmp_path / "ct", instances=4)
    series_id = through_deid(rt, tmp_path / "ct")
    send_series(SendContext(rt.engine, rt.store, [destination(rt)]), series_id)
    api = client(rt)

    def found(query: str) -> list[int]:
        response = api.get(f"/api/v1/search?{query}")
        assert response.status_code == 200, response.text
        return [hit["series_id"] for hit in response.json()["items"]]

    assert found("modality=CT&body_part=CHEST") == [series_id]
    assert found("modality=ct&body_part=chest&format=nifti") == [series_id]
    assert found("modality=MR") == [] and found("body_part=HEAD") == []
    hit = api.get("/api/v1/search?modality=CT").json()["items"][0]
    assert hit["status"] == "DONE" and hit["location"].startswith(f"gs://{BUCKET}/{prefix}/")
    assert hit["fields"]["BodyPartExamined"] == "CHEST"
    study_date = hit["study_date"]
    assert found(f"study_date_from={study_date}&study_date_to={study_date}") == [series_id]
    assert found("study_date_to=1900-01-01") == []
    assert found("description=knee") == []  # the profile removed the description
    assert api.get("/api/v1/search?body_part=%00").status_code == 422
    assert client(rt, role=None).get("/api/v1/search").status_code == 401
