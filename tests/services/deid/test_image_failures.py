"""One bad element or item fails its own image, with a fixed reason; the rest of
the series is de-identified and goes on. Real SQLite, real files: the bad
original replaces a good one after ingest, as a file that went bad (or a
device that writes what ingest's reader lets through) would."""

from __future__ import annotations

import errno
import gzip
import struct
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.sequence import Sequence
from pydicom.uid import DeflatedExplicitVRLittleEndian, JPEGBaseline8Bit
from sqlmodel import Session, select

from relay_deid import handlers
from relay_deid.handlers import deidentify_series
from relay_shared.models import Image, Series, Status
from tests.support.dicom_factory import Patient, SeriesSpec, make_instance, write_series

from .test_handlers import _context, _ingest

PATIENT = Patient("MRN-BAD-1", "Brokenfile^Bertha")


def _unknown_vr_in_patient_name(data: bytes) -> bytes:
    at = data.index(b"\x10\x00\x10\x00PN") + 4
    return data[:at] + b"ZZ" + data[at + 2:]


def _unknown_vr_in_a_kept_element(data: bytes) -> bytes:
    at = data.index(b"\x08\x00\x60\x00CS") + 4  # Modality, which the profile keeps
    return data[:at] + b"\x01\x02" + data[at + 2:]


def _sequence_as_un_with_stray_bytes(data: bytes) -> bytes:
    """OtherPatientIDsSequence relabelled UN: its items are then read as
    implicit VR, which the explicit VR bytes inside are not."""
    at = data.index(b"\x10\x00\x02\x10SQ") + 4
    return data[:at] + b"UN" + data[at + 2:]


def _stray_item_tag_inside_an_item(data: bytes) -> bytes:
    """An item tag where the item's next data element belongs, the sequence's
    and the item's lengths grown to hold it."""
    at = data.index(b"\x10\x00\x02\x10SQ")
    (length,) = struct.unpack_from("<L", data, at + 8)
    (item_length,) = struct.unpack_from("<L", data, at + 16)
    stray = b"\xfe\xff\x00\xe0\x00\x00\x00\x00"
    return (data[:at + 8] + struct.pack("<L", length + 8) + data[at + 12:at + 16]
            + struct.pack("<L", item_length + 8) + data[at + 20:at + 20] + stray
            + data[at + 20:])


def _length_past_the_end(data: bytes) -> bytes:
    at = data.index(b"\x10\x00\x10\x00PN") + 6
    return data[:at] + b"\xff\x7f" + data[at + 2:]


def _implicit_data_set_labelled_jpeg(spec: SeriesSpec, index: int) -> bytes:
    """As pydicom's SC_rgb_jpeg.dcm: the file meta says JPEG Baseline (explicit
    VR), the data set is implicit VR. Reading it either way loses something."""
    ds = make_instance(spec, index)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, True
    write_dataset(body, ds)
    meta = DicomBytesIO()
    write_file_meta_info(meta, ds.file_meta)
    return b"\x00" * 128 + b"DICM" + meta.getvalue() + body.getvalue()


BYTE_DAMAGE: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "unknown VR in PatientName": (_unknown_vr_in_patient_name, "an element with an unknown VR"),
    "unknown VR in a kept element": (_unknown_vr_in_a_kept_element,
                                     "an element with an unknown VR"),
    "public sequence stored as UN with stray bytes": (_sequence_as_un_with_stray_bytes,
                                                      "the header is cut short"),
    "stray item tag inside an item": (_stray_item_tag_inside_an_item,
                                      "a delimiter out of place"),
    "a length past the end": (_length_past_the_end, "the header is cut short"),
}


def _run_with_one_bad_image(tmp_path: Path, bad: Callable[[SeriesSpec, Path], bytes]
                            ) -> tuple[list[Image], Series, int]:
    ctx = _context(tmp_path)
    spec = SeriesSpec(PATIENT, instances=3, rows=8, columns=8)
    write_series(spec, tmp_path / "src")
    series_id = _ingest(ctx, tmp_path / "src")
    with Session(ctx.engine) as session:
        victim = session.exec(select(Image).order_by(Image.id)).first()  # type: ignore[arg-type]
        assert victim is not None and victim.id is not None
    original = ctx.store.original(series_id, victim.id)
    original.write_bytes(bad(spec, original))
    deidentify_series(ctx, series_id)
    with Session(ctx.engine) as session:
        images = list(session.exec(select(Image).order_by(Image.id)))  # type: ignore[arg-type]
        series = session.get(Series, series_id)
        assert series is not None
        session.expunge_all()
    outputs = list((ctx.store.series_dir(series_id) / "deidentified").glob("*"))
    for output in outputs:
        assert dcmread(output).PatientID != PATIENT.patient_id
    return images, series, len(outputs)


def _assert_only_the_first_failed(images: list[Image], series: Series, outputs: int,
                                  reason: str) -> None:
    assert [i.status for i in images] == [Status.FAILED, Status.DONEPROCESSING,
                                          Status.DONEPROCESSING]
    assert reason in (images[0].reason or "")
    for value in ("Brokenfile", "Bertha", PATIENT.patient_id):
        assert value not in (images[0].reason or "")
    assert series.status is Status.DONEPROCESSING and series.attempts == 1
    assert outputs == 2


@pytest.mark.parametrize("damage", sorted(BYTE_DAMAGE))
def test_a_damaged_element_fails_its_image_only(tmp_path: Path, damage: str) -> None:
    change, reason = BYTE_DAMAGE[damage]
    images, series, outputs = _run_with_one_bad_image(
        tmp_path, lambda spec, path: change(path.read_bytes()))
    _assert_only_the_first_failed(images, series, outputs, reason)


def test_a_transfer_syntax_the_bytes_contradict_fails_its_image_not_its_pixels(
        tmp_path: Path) -> None:
    images, series, outputs = _run_with_one_bad_image(
        tmp_path, lambda spec, path: _implicit_data_set_labelled_jpeg(spec, 0))
    _assert_only_the_first_failed(images, series, outputs,
                                  "the data set is not encoded as its transfer syntax says")


@pytest.mark.parametrize(("cap", "fails"), [(1 << 20, True), (64 << 20, False)])
def test_a_deflated_original_inflates_no_further_than_the_setting_allows(
        tmp_path: Path, cap: int, fails: bool) -> None:
    """RELAY_MAX_INFLATED_BYTES bounds deid's reading as it bounds ingest's: a smaller
    setting than the built-in default holds here too."""
    ctx = replace(_context(tmp_path), max_inflated_bytes=cap)
    spec = SeriesSpec(PATIENT, instances=2, rows=8, columns=8)
    write_series(spec, tmp_path / "src")
    series_id = _ingest(ctx, tmp_path / "src")
    with Session(ctx.engine) as session:
        victim = session.exec(select(Image).order_by(Image.id)).first()  # type: ignore[arg-type]
        assert victim is not None and victim.id is not None
    deflated = make_instance(spec, 0)
    deflated.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    deflated.PixelData = bytes(4 << 20)  # zeros: a few KB once deflated
    deflated.save_as(ctx.store.original(series_id, victim.id), enforce_file_format=True)
    deidentify_series(ctx, series_id)
    with Session(ctx.engine) as session:
        first = session.get(Image, victim.id)
        assert first is not None
        if fails:
            assert first.status is Status.FAILED
            assert "inflates past the size allowed" in (first.reason or "")
        else:
            assert first.status is Status.DONEPROCESSING


def _writer_failing_first_with(monkeypatch: pytest.MonkeyPatch, error: OSError) -> None:
    """The first image's write raises what a library (or the machine) raised."""
    real = handlers.write_deidentified
    calls = []

    def write(source: Path, target: Path, dataset: object) -> None:
        calls.append(source)
        if len(calls) == 1:
            raise error
        real(source, target, dataset)

    monkeypatch.setattr(handlers, "write_deidentified", write)


def test_a_library_refusing_a_file_fails_that_image_not_the_series(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An OSError without an errno (gzip's, PIL's) is about the file: retrying the
    series cannot mend it, so it fails its image only."""
    _writer_failing_first_with(monkeypatch, gzip.BadGzipFile("Not a gzipped file"))
    images, series, outputs = _run_with_one_bad_image(tmp_path, lambda spec, path:
                                                      path.read_bytes())
    _assert_only_the_first_failed(images, series, outputs, "BadGzipFile")


def test_the_machine_failing_leaves_the_series_to_be_retried(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _writer_failing_first_with(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(OSError, match="No space"):
        _run_with_one_bad_image(tmp_path, lambda spec, path: path.read_bytes())


# -- values not of their dictionary VR, through the deid service -------------
#
# Written under their own VR (or a text VR where the dictionary says numbers),
# each value holds the patient's name or ID; the leak guard does not read
# code strings, numbers, times or binary values, so the engine must not keep
# them. The image is de-identified and sent, without any of them.

PLANTED = {
    # keyword or tag: (written VR, value)
    "SliceThickness": ("DS", b"Bertha Brokenfile 5551234 "),
    "InstanceNumber": ("IS", b"Bertha Brokenfile "),
    "StudyTime": ("TM", b"Bertha MRN-BAD-1 "),  # cleaned under rtnLongModifDatesOpt
    "WindowCenter": ("DS", b"MRN-BAD-1 Bertha "),
    "ImageType": ("CS", b"ORIGINAL\\PRIMARY\\BERTHA BROKENFILE "),
    "BodyPartExamined": ("CS", b"BERTHA BROKENFILE "),
    "SmallestImagePixelValue": ("LO", b"Bertha Brokenfile MRN-BAD-1 "),  # US or SS
    "TagAngleSecondAxis": ("UT", b"Bertha Brokenfile MRN-BAD-1 "),  # SS
    "RedPaletteColorLookupTableDescriptor": ("LT", b"Bertha Brokenfile MRN-BAD-1 "),
    "LUTData": ("UT", b"Bertha Brokenfile MRN-BAD-1 "),  # US or OW
    "SecondaryReviewerName": ("PN", b"Brokenfile^Bertha "),  # PN the table does not list
    "EvaluatorName": ("PN", b"Reviewer^Rita "),
}


def _planted(values: dict[str, tuple[str, bytes]]) -> Callable[[SeriesSpec, Path], bytes]:
    def write(spec: SeriesSpec, path: Path) -> bytes:
        from pydicom.datadict import tag_for_keyword
        from pydicom.dataelem import RawDataElement
        from pydicom.tag import Tag

        ds = dcmread(path)
        for keyword, (vr, value) in values.items():
            tag = Tag(tag_for_keyword(keyword))
            ds[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)  # type: ignore[assignment]
        out = DicomBytesIO()
        ds.save_as(out, enforce_file_format=True)
        return out.getvalue()
    return write


def _output_bytes(tmp_path: Path) -> list[bytes]:
    return [p.read_bytes() for p in (tmp_path / "work").rglob("deidentified/*")]


def test_values_not_of_their_dictionary_vr_do_not_leave(tmp_path: Path) -> None:
    images, series, outputs = _run_with_one_bad_image(tmp_path, _planted(PLANTED))
    assert [i.status for i in images] == [Status.DONEPROCESSING] * 3
    assert series.status is Status.DONEPROCESSING and outputs == 3
    data = _output_bytes(tmp_path)
    assert len(data) == 3
    for output in data:
        for needle in (b"Bertha", b"BERTHA", b"Brokenfile", b"BROKENFILE", b"MRN-BAD-1",
                       b"5551234", b"Rita", b"Reviewer"):
            assert needle not in output
    # The planted image: Instance Number is now the dummy 0 (the others 2, 3).
    (first,) = [ds for ds in map(dcmread, (tmp_path / "work").rglob("deidentified/*"))
                if ds.InstanceNumber == 0]
    assert list(first.ImageType)[:2] == ["ORIGINAL", "PRIMARY"]
    assert first.pixel_array.shape == (8, 8)  # the image is still an image


def test_text_as_the_rows_of_an_image_fails_that_image_only(tmp_path: Path) -> None:
    """Rows written as text: a dummy would misdescribe the pixels, removing it
    would leave no image. The image fails, in fixed words."""
    images, series, outputs = _run_with_one_bad_image(
        tmp_path, _planted({"Rows": ("LO", b"Bertha Brokenfile MRN-BAD-1 ")}))
    _assert_only_the_first_failed(images, series, outputs,
                                  "a value that describes the pixel data is not of its VR")
    for output in _output_bytes(tmp_path):
        assert b"Bertha" not in output

# The guard's own reading of a file: what it cannot read fails that image alone,
# with the guard's reason; a series is quarantined only for a value it found.
@pytest.mark.parametrize("padding", [3, 100, 2048])
def test_an_original_padded_with_zeros_after_its_data_set_goes_on(
        tmp_path: Path, padding: int) -> None:
    """Media written in sectors pad the last one with zeros: the guard reads past
    them as ingest and the profile do, instead of quarantining the series."""
    images, series, outputs = _run_with_one_bad_image(
        tmp_path, lambda spec, path: path.read_bytes() + b"\x00" * padding)
    assert [i.status for i in images] == [Status.DONEPROCESSING] * 3, series.error
    assert series.status is Status.DONEPROCESSING and outputs == 3


def test_an_original_with_other_bytes_after_its_data_set_fails_its_image_only(
        tmp_path: Path) -> None:
    """Bytes after the data set that are not padding could hide anything: the
    guard does not read past them, so that image fails (its output is not
    cleared), but the series is not called leaking and the rest goes on."""
    images, series, outputs = _run_with_one_bad_image(
        tmp_path, lambda spec, path: path.read_bytes() + b"\x00\x00Brokenfile^Bertha ")
    _assert_only_the_first_failed(images, series, outputs, "the guard cannot read the original")
    assert "leak" not in (images[0].reason or "")


def _nested(depth: int) -> Callable[[SeriesSpec, Path], bytes]:
    def write(spec: SeriesSpec, path: Path) -> bytes:
        ds = dcmread(path)
        inner = Dataset()
        inner.CodeValue, inner.CodingSchemeDesignator, inner.CodeMeaning = "T-1", "SRT", "Chest"
        for _ in range(depth):
            outer = Dataset()
            outer.AnatomicRegionSequence = Sequence([inner])
            inner = outer
        ds.AnatomicRegionSequence = inner.AnatomicRegionSequence
        ds.save_as(path)
        return path.read_bytes()
    return write


def test_an_original_nested_deeper_than_32_levels_goes_on(tmp_path: Path) -> None:
    """The profile de-identifies sequences at any depth it can recurse to; the
    guard reads as deep (it stopped at 32 levels and quarantined the series)."""
    images, series, outputs = _run_with_one_bad_image(tmp_path, _nested(40))
    assert [i.status for i in images] == [Status.DONEPROCESSING] * 3, series.error
    assert series.status is Status.DONEPROCESSING and outputs == 3


def test_an_output_the_guard_cannot_read_fails_its_image_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = handlers.write_deidentified
    calls = []

    def write(source: Path, target: Path, dataset: object) -> None:
        real(source, target, dataset)
        calls.append(target)
        if len(calls) == 1:  # the first output gains bytes the guard refuses
            target.write_bytes(target.read_bytes() + b"\x01\x02\x03\x04")

    monkeypatch.setattr(handlers, "write_deidentified", write)
    images, series, outputs = _run_with_one_bad_image(tmp_path, lambda spec, path:
                                                      path.read_bytes())
    _assert_only_the_first_failed(images, series, outputs, "the guard cannot read the output")
    assert "leak" not in (images[0].reason or "")


def test_a_series_whose_every_original_the_guard_cannot_read_is_held(tmp_path: Path) -> None:
    """Nothing the guard could clear is sent, and nothing was found to leak: a
    person looks, as when no image could be de-identified."""
    ctx = _context(tmp_path)
    spec = SeriesSpec(PATIENT, instances=2, rows=8, columns=8)
    write_series(spec, tmp_path / "src")
    series_id = _ingest(ctx, tmp_path / "src")
    with Session(ctx.engine) as session:
        ids = [i.id for i in session.exec(select(Image))]
    for image_id in ids:
        assert image_id is not None
        original = ctx.store.original(series_id, image_id)
        original.write_bytes(original.read_bytes() + b"\x07")
    deidentify_series(ctx, series_id)
    with Session(ctx.engine) as session:
        series = session.get(Series, series_id)
        assert series is not None
        assert series.status is Status.FAILED
        assert series.error == "the guard could read no image of this series"
    assert not list((ctx.store.series_dir(series_id) / "deidentified").glob("*"))
