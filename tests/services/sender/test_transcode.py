"""A transfer syntax per destination: instances go as they are when allowed, else are
transcoded losslessly (decoded back here: the pixels must be identical), and a lossy
one is never transcoded. Real files, a real outbox folder and a real Orthanc (REST and
DICOM), which stores what it receives; what it stored is fetched back and compared."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from pydantic import ValidationError
from pydicom import dcmread
from pydicom import uid as uids
from pydicom.dataset import Dataset
from sqlmodel import Session, select

from relay_sender.destinations import (
    Destination,
    FolderDestination,
    OutgoingInstance,
    OutgoingSeries,
)
from relay_sender.dicom_ae import DicomDestination
from relay_sender.dicomweb import DicomWebDestination
from relay_sender.handlers import NotHeld, SendContext, send_series
from relay_sender.main import build_destinations
from relay_sender.negotiation import requested_contexts
from relay_sender.orthanc import OrthancDestination
from relay_sender.projects import build_named
from relay_sender.transcode import SyntaxPolicy, SyntaxRefused, TranscodingDestination, transcode
from relay_shared.models import Delivery, DeliveryState, Image, Series, Status
from relay_shared.projects import ProjectsRegistry
from relay_shared.projects.schema import ProjectsFile
from relay_shared.settings import load_settings
from tests.services.api.seed import make_runtime
from tests.services.sender.test_gcs import through_deid
from tests.support.dicom_factory import Patient, SeriesSpec, make_instance
from tests.support.services import Orthanc, free_port

PATIENT = Patient("MRN-8008", "Franklin^Rosalind")
LOSSLESS_TARGETS = [uids.RLELossless, uids.JPEG2000Lossless, uids.JPEGLSLossless,
                    uids.DeflatedExplicitVRLittleEndian, uids.ImplicitVRLittleEndian]


def _rgb(index: int = 0) -> Dataset:
    ds = make_instance(SeriesSpec(PATIENT, instances=1), 0)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    rng = np.random.default_rng(index + 10)
    ds.PixelData = rng.integers(0, 256, (ds.Rows, ds.Columns, 3), dtype=np.uint8).tobytes()
    return ds


def _series(folder: Path, datasets: list[Dataset], series_id: int = 1) -> OutgoingSeries:
    """The files laid out as the work store holds de-identified ones."""
    instances = []
    for image_id, ds in enumerate(datasets, start=1):
        path = folder / f"series-{series_id}" / "deidentified" / f"{image_id}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        instances.append(OutgoingInstance(image_id, str(ds.SOPInstanceUID), path))
    first = datasets[0]
    return OutgoingSeries(series_id, str(first.StudyInstanceUID), str(first.SeriesInstanceUID),
                          instances)


def _lossy(ds: Dataset) -> Dataset:
    ds.compress(uids.JPEG2000, encoding_plugin="pylibjpeg", j2k_cr=[20])
    return ds


@pytest.mark.parametrize("syntax", LOSSLESS_TARGETS, ids=lambda s: uids.UID(s).name)
@pytest.mark.parametrize("make", [lambda: make_instance(SeriesSpec(PATIENT, instances=1), 0),
                                  _rgb], ids=["mono16", "rgb8"])
def test_a_lossless_transcode_decodes_to_the_same_pixels(tmp_path: Path, syntax: str,
                                                         make: object) -> None:
    original = make()  # type: ignore[operator]
    original.save_as(tmp_path / "in.dcm", enforce_file_format=True)
    transcode(tmp_path / "in.dcm", tmp_path / "out.dcm", syntax)
    copy = dcmread(tmp_path / "out.dcm")
    assert copy.file_meta.TransferSyntaxUID == syntax
    assert np.array_equal(copy.pixel_array, dcmread(tmp_path / "in.dcm").pixel_array)
    assert copy.SOPInstanceUID == original.SOPInstanceUID


def test_a_compressed_source_is_transcoded_to_another_compression_without_loss(
        tmp_path: Path) -> None:
    ds = make_instance(SeriesSpec(PATIENT, instances=1), 0)
    expected = ds.pixel_array.copy()
    ds.compress(uids.RLELossless, encoding_plugin="pydicom")
    ds.save_as(tmp_path / "rle.dcm", enforce_file_format=True)
    transcode(tmp_path / "rle.dcm", tmp_path / "j2k.dcm", uids.JPEG2000Lossless)
    copy = dcmread(tmp_path / "j2k.dcm")
    assert copy.file_meta.TransferSyntaxUID == uids.JPEG2000Lossless
    assert np.array_equal(copy.pixel_array, expected)


def test_the_policy_sends_as_is_refuses_lossy_and_never_picks_a_lossy_target() -> None:
    policy = SyntaxPolicy((uids.JPEGBaseline8Bit, uids.JPEG2000, uids.RLELossless))
    assert policy.targets(uids.JPEGBaseline8Bit) == []  # allowed: as it is
    assert policy.targets(uids.ExplicitVRLittleEndian) == [uids.RLELossless]
    with pytest.raises(SyntaxRefused, match=r"lossy.*never done implicitly"):
        SyntaxPolicy((uids.RLELossless,)).targets(uids.JPEGBaseline8Bit)
    with pytest.raises(SyntaxRefused, match="none of which the relay writes losslessly"):
        SyntaxPolicy((uids.JPEGBaseline8Bit,)).targets(uids.ExplicitVRLittleEndian)
    # Whatever a file says its syntax is, a reason shows it only if the standard has it.
    with pytest.raises(SyntaxRefused) as refused:
        SyntaxPolicy((uids.RLELossless,)).targets("Doe^Jane")
    assert "Doe" not in refused.value.reason and "does not know" in refused.value.reason


def test_a_folder_gets_allowed_files_untouched_and_others_transcoded(tmp_path: Path) -> None:
    spec = SeriesSpec(PATIENT, instances=2)
    plain, rle = make_instance(spec, 0), make_instance(spec, 1)
    rle.compress(uids.RLELossless, encoding_plugin="pydicom")
    series = _series(tmp_path / "work", [plain, rle])
    kept = series.instances[1].path.read_bytes()
    folder = TranscodingDestination(FolderDestination(tmp_path / "outbox"),
                                    [uids.JPEGLSLossless, uids.RLELossless])
    folder.send(series)
    assert folder.missing(series) == set()
    sent = {dcmread(p).SOPInstanceUID: p for p in (tmp_path / "outbox").rglob("*.dcm")}
    first = dcmread(sent[plain.SOPInstanceUID])
    assert first.file_meta.TransferSyntaxUID == uids.JPEGLSLossless  # the first it can write
    assert np.array_equal(first.pixel_array, make_instance(spec, 0).pixel_array)
    assert sent[rle.SOPInstanceUID].read_bytes() == kept  # allowed: byte for byte


def test_a_lossy_image_fails_with_its_reason_and_the_others_are_confirmed(
        tmp_path: Path) -> None:
    """Through the sender's own handler, on the relay's database: the image that
    cannot go is FAILED at that destination with why, the others CONFIRMED."""
    rt = make_runtime(tmp_path / "var")
    spec_folder = tmp_path / "series"
    spec = SeriesSpec(PATIENT, instances=3)
    spec_folder.mkdir()
    for index in range(3):
        make_instance(spec, index).save_as(spec_folder / f"IM{index}.dcm",
                                           enforce_file_format=True)
    series_id = through_deid(rt, spec_folder)
    with Session(rt.engine) as session:
        image_ids = sorted(i.id for i in session.exec(  # type: ignore[type-var]
            select(Image).where(Image.series_id == series_id)))
    lossy_path = rt.store.deidentified(series_id, image_ids[0])
    _lossy(dcmread(lossy_path)).save_as(lossy_path, enforce_file_format=True)
    outbox = TranscodingDestination(FolderDestination(tmp_path / "outbox"),
                                    [uids.RLELossless])
    with pytest.raises(NotHeld, match="lossy"):
        send_series(SendContext(rt.engine, rt.store, [outbox]), series_id)
    with Session(rt.engine) as session:
        rows = {d.image_id: d for d in session.exec(select(Delivery))}
        assert session.get(Series, series_id).status is not Status.DONE  # type: ignore[union-attr]
    refused = rows[image_ids[0]]
    assert refused.state == DeliveryState.FAILED
    assert refused.error and "JPEG 2000" in refused.error and "never done implicitly" in \
        refused.error
    assert {rows[i].state for i in image_ids[1:]} == {DeliveryState.CONFIRMED}
    assert len(list((tmp_path / "outbox").rglob("*.dcm"))) == 2


def test_the_projects_file_and_the_setting_check_the_list(tmp_path: Path) -> None:
    base = {"version": 1, "projects": [{"name": "p", "destinations": ["d"]}]}
    good = ProjectsFile.model_validate({**base, "destinations": {"d": {
        "kind": "dicom", "host": "pacs", "transfer_syntax": [uids.JPEG2000Lossless,
                                                             uids.ExplicitVRLittleEndian]}}})
    assert good.destinations["d"].transfer_syntax == [uids.JPEG2000Lossless,
                                                      uids.ExplicitVRLittleEndian]
    for bad, said in (({"kind": "outbox", "path": "x", "transfer_syntax": ["1.2.3"]},
                       "not a transfer syntax"),
                      ({"kind": "gcs", "bucket": "abc", "format": "nifti",
                        "transfer_syntax": [uids.RLELossless]}, "NIfTI")):
        with pytest.raises(ValidationError, match=said):
            ProjectsFile.model_validate({**base, "destinations": {"d": bad}})
    assert load_settings(data_dir=tmp_path, transfer_syntax="1.2.840.10008.1.2.4.80,"
                         "1.2.840.10008.1.2.1").transfer_syntax == [uids.JPEGLSLossless,
                                                                     uids.ExplicitVRLittleEndian]


def test_the_association_proposes_every_listed_syntax_for_each_sop_class() -> None:
    pairs = [(uids.CTImageStorage, uids.JPEGLSLossless)]
    assert requested_contexts(pairs, [uids.JPEGLSLossless, uids.ExplicitVRLittleEndian]) == [
        (uids.CTImageStorage, uids.JPEGLSLossless),
        (uids.CTImageStorage, uids.ExplicitVRLittleEndian)]
    assert requested_contexts(pairs, []) == pairs


@pytest.fixture(scope="module")
def orthanc_knowing_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    """An Orthanc that knows the relay's calling AE, so it answers its C-FIND."""
    server = Orthanc(tmp_path_factory.mktemp("orthanc-syntaxes"))
    server.modalities = {"relay": ["RELAY", "127.0.0.1", free_port()]}
    server.start()
    yield server
    server.stop()


@pytest.fixture
def orthanc(orthanc_knowing_relay: Orthanc) -> Orthanc:
    orthanc_knowing_relay.clear()
    return orthanc_knowing_relay


def _stored(orthanc: Orthanc) -> dict[str, Dataset]:
    """Each instance Orthanc holds, as the file it stored."""
    found = {}
    for instance in orthanc.instances():
        data = httpx.get(f"{orthanc.url}/instances/{instance}/file", timeout=30).content
        ds = dcmread(io.BytesIO(data))
        found[str(ds.SOPInstanceUID)] = ds
    return found


@pytest.mark.orthanc
@pytest.mark.parametrize("syntax", [uids.JPEG2000Lossless, uids.JPEGLSLossless,
                                    uids.RLELossless], ids=lambda s: uids.UID(s).name)
@pytest.mark.parametrize("kind", ["orthanc", "dicom", "dicomweb"])
def test_orthanc_stores_the_transcoded_instances_with_identical_pixels(
        orthanc: Orthanc, tmp_path: Path, syntax: str, kind: str) -> None:
    spec = SeriesSpec(PATIENT, instances=2)
    datasets = [make_instance(spec, 0), _rgb(1)]
    datasets[1].StudyInstanceUID, datasets[1].SeriesInstanceUID = spec.study_uid, \
        spec.series_uid
    expected = {str(ds.SOPInstanceUID): ds.pixel_array.copy() for ds in datasets}
    series = _series(tmp_path / "work", datasets)
    inner: Destination = {
        "orthanc": lambda: OrthancDestination(orthanc.url),
        "dicom": lambda: DicomDestination("127.0.0.1", orthanc.dicom_port, orthanc.aet),
        "dicomweb": lambda: DicomWebDestination(f"{orthanc.url}/dicom-web", timeout=30),
    }[kind]()
    destination = TranscodingDestination(inner, [syntax])
    destination.send(series)
    assert destination.missing(series) == set()
    stored = _stored(orthanc)
    assert set(stored) == set(expected)
    for sop_uid, ds in stored.items():
        assert ds.file_meta.TransferSyntaxUID == syntax
        assert np.array_equal(ds.pixel_array, expected[sop_uid])


@pytest.mark.orthanc
def test_a_dicom_destination_takes_the_next_listed_syntax_it_can_write(
        orthanc: Orthanc, tmp_path: Path) -> None:
    """The list's first choice is lossy (never a target for a lossless source): the
    association proposes the whole list and the instance goes in the next one."""
    spec = SeriesSpec(PATIENT, instances=1)
    series = _series(tmp_path / "work", [make_instance(spec, 0)])
    destination = TranscodingDestination(
        DicomDestination("127.0.0.1", orthanc.dicom_port, orthanc.aet),
        [uids.JPEGBaseline8Bit, uids.JPEG2000Lossless])
    destination.send(series)
    assert destination.missing(series) == set()
    (stored,) = _stored(orthanc).values()
    assert stored.file_meta.TransferSyntaxUID == uids.JPEG2000Lossless
    assert np.array_equal(stored.pixel_array, make_instance(spec, 0).pixel_array)


@pytest.mark.orthanc
def test_a_syntax_the_ae_turns_down_is_replaced_by_the_next_listed_one_it_accepts(
        tmp_path: Path) -> None:
    """An Orthanc that does not take JPEG 2000: the instance, fitted to the list's
    first choice, goes in the JPEG-LS the association settled on instead."""
    server = Orthanc(tmp_path / "orthanc", options={"Jpeg2000TransferSyntaxAccepted": False})
    server.modalities = {"relay": ["RELAY", "127.0.0.1", free_port()]}
    server.start()
    try:
        spec = SeriesSpec(PATIENT, instances=2)
        series = _series(tmp_path / "work", [make_instance(spec, i) for i in range(2)])
        destination = TranscodingDestination(
            DicomDestination("127.0.0.1", server.dicom_port, server.aet),
            [uids.JPEG2000Lossless, uids.JPEGLSLossless])
        destination.send(series)
        assert destination.missing(series) == set()
        stored = _stored(server)
    finally:
        server.stop()
    assert {str(ds.file_meta.TransferSyntaxUID) for ds in stored.values()} == {
        uids.JPEGLSLossless}
    for index, uid in enumerate(spec.sop_uids):
        assert np.array_equal(stored[uid].pixel_array, make_instance(spec, index).pixel_array)


def test_each_named_destination_of_a_project_gets_its_own_syntax(tmp_path: Path) -> None:
    """From the projects file: one folder wants RLE, its neighbour takes anything."""
    (tmp_path / "projects.yaml").write_text(
        "version: 1\n"
        "destinations:\n"
        "  rle: {kind: outbox, path: rle, transfer_syntax: 1.2.840.10008.1.2.5}\n"
        "  asis: {kind: outbox, path: asis}\n"
        "projects:\n"
        "  - {name: trial, destinations: [rle, asis]}\n")
    settings = load_settings(data_dir=tmp_path, projects=tmp_path / "projects.yaml")
    projects = ProjectsRegistry(settings).current
    built = {name: build_named(name, projects.destinations[name], projects, settings, None)
             for name in ("rle", "asis")}
    spec = SeriesSpec(PATIENT, instances=2)
    series = _series(tmp_path / "work", [make_instance(spec, i) for i in range(2)])
    for destination in built.values():
        destination.send(series)
        assert destination.missing(series) == set()
    for name, syntax in (("rle", uids.RLELossless), ("asis", uids.ExplicitVRLittleEndian)):
        files = [dcmread(p) for p in (tmp_path / name).rglob("*.dcm")]
        assert len(files) == 2
        for ds in files:
            assert ds.file_meta.TransferSyntaxUID == syntax
            index = spec.sop_uids.index(ds.SOPInstanceUID)
            assert np.array_equal(ds.pixel_array, make_instance(spec, index).pixel_array)


def test_the_default_projects_setting_applies_to_its_dicom_file_destinations(
        tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, destinations="outbox,s3", s3_bucket="volumes",
                             s3_format="nifti", transfer_syntax="1.2.840.10008.1.2.4.80")
    outbox, bucket = build_destinations(settings)
    assert isinstance(outbox, TranscodingDestination) and outbox.name == "outbox"
    assert not isinstance(bucket, TranscodingDestination)  # a NIfTI volume has no syntax
    spec = SeriesSpec(PATIENT, instances=1)
    series = _series(tmp_path / "work", [make_instance(spec, 0)])
    outbox.send(series)
    (sent,) = [dcmread(p) for p in settings.outbox_dir.rglob("*.dcm")]  # type: ignore[union-attr]
    assert sent.file_meta.TransferSyntaxUID == uids.JPEGLSLossless
