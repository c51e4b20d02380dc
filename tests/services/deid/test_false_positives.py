"""Coincidences that are not leaks: the leak check and the guard pass them,
the series goes on, and the real leak beside each is still caught."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from sqlmodel import Session, select

from relay_deid.handlers import deidentify_series
from relay_shared.deid import DeidConfig
from relay_shared.deid.values import shift_da
from relay_shared.models import Image, Series, Status
from tests.support.dicom_factory import Patient, SeriesSpec, write_series

from .test_handlers import PSEUDONYMIZER, _context, _ingest


def _run(tmp_path: Path, spec: SeriesSpec, config: DeidConfig | None = None,
         **values: object) -> tuple[Series, list[Path]]:
    ctx = _context(tmp_path, config)
    for path in write_series(spec, tmp_path / "src"):
        ds = dcmread(path)
        for keyword, value in values.items():
            setattr(ds, keyword, value)
        ds.save_as(path)
    series_id = _ingest(ctx, tmp_path / "src")
    deidentify_series(ctx, series_id)
    with Session(ctx.engine) as session:
        series = session.get(Series, series_id)
        assert series is not None
        session.expunge(series)
        statuses = {i.status for i in session.exec(select(Image))}
    outputs = sorted((ctx.store.series_dir(series_id) / "deidentified").glob("*"))
    assert statuses == {series.status}, series.error
    return series, outputs


def test_input_already_anonymized_as_the_relays_dummy_goes_on(tmp_path: Path) -> None:
    spec = SeriesSpec(Patient("ANONYMIZED", "ANONYMIZED", institution="ANONYMIZED",
                              physician="ANONYMIZED", accession="ANONYMIZED"), instances=2)
    # The profile gives Device Serial Number its dummy, which is the same word.
    series, outputs = _run(tmp_path, spec, OperatorsName="ANONYMIZED",
                           StationName="ANONYMIZED", DeviceSerialNumber="SN-448812")
    assert series.status is Status.DONEPROCESSING, series.error
    assert dcmread(outputs[0]).DeviceSerialNumber == "ANONYMIZED"


def test_a_surname_that_is_also_the_body_part_goes_on(tmp_path: Path) -> None:
    spec = SeriesSpec(Patient("MRN-HEAD-1", "Head^Johanna"), instances=2)
    series, outputs = _run(tmp_path, spec, BodyPartExamined="HEAD")
    assert series.status is Status.DONEPROCESSING, series.error
    out = dcmread(outputs[0])
    assert out.BodyPartExamined == "HEAD"
    assert "Head" not in str(out.get("StudyDescription", ""))  # "CT CHEST for Head"


def test_a_surname_that_is_also_the_body_part_still_leaks_from_kept_text(
        tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text('version: "keeps comments"\nattributes:\n  ImageComments: keep\n')
    spec = SeriesSpec(Patient("MRN-HEAD-2", "Head^Johanna"), instances=1)
    series, _ = _run(tmp_path, spec,
                     DeidConfig.from_settings(["rtnLongModifDatesOpt"], str(recipe)),
                     BodyPartExamined="HEAD", ImageComments="called Johanna Head back")
    assert series.status is Status.QUARANTINED
    assert "(0020,4000)" in (series.error or "") and "(0018,0015)" not in (series.error or "")


def test_a_shifted_date_that_lands_on_another_original_date_goes_on(tmp_path: Path) -> None:
    patient = Patient("MRN-SHIFT-1", "Shifted^Sam")
    shift = PSEUDONYMIZER.identifiers_for(patient.patient_id).date_shift_days
    patient.birth_date = shift_da("20240315", shift)  # where the study date is shifted to
    series, outputs = _run(tmp_path, SeriesSpec(patient, instances=2, study_date="20240315"))
    assert series.status is Status.DONEPROCESSING, series.error
    assert dcmread(outputs[0]).StudyDate == patient.birth_date


def test_a_newborn_imaged_on_its_birth_date_with_full_dates_kept_goes_on(
        tmp_path: Path) -> None:
    spec = SeriesSpec(Patient("MRN-NEWBORN-1", "Newborn^Nora", birth_date="20240315"),
                      instances=2, study_date="20240315")
    series, outputs = _run(tmp_path, spec, DeidConfig.from_settings(["rtnLongFullDatesOpt"],
                                                                    None))
    assert series.status is Status.DONEPROCESSING, series.error
    out = dcmread(outputs[0])
    assert out.StudyDate == "20240315" and out.get("PatientBirthDate", "") == ""


def test_a_birth_date_kept_by_a_recipe_in_free_text_is_still_a_leak(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text('version: "keeps comments"\nattributes:\n  ImageComments: keep\n')
    spec = SeriesSpec(Patient("MRN-NEWBORN-2", "Newborn^Nils", birth_date="20240316"),
                      instances=1, study_date="20240315")
    series, _ = _run(tmp_path, spec,
                     DeidConfig.from_settings(["rtnLongFullDatesOpt"], str(recipe)),
                     ImageComments="born 20240316")
    assert series.status is Status.QUARANTINED


@pytest.mark.parametrize("values", [
    {"StudyDescription": "Brain", "PositionReferenceIndicator": "Brain"},
    {"SeriesDescription": "Abdomen", "ManufacturerModelName": "Abdomen scanner"},
    {"StudyDescription": "Knee", "ProtocolName": "Knee", "BodyPartExamined": "KNEE",
     "ManufacturerModelName": "Knee coil 8ch"},
], ids=["study description as position reference", "series description in the model",
        "study description in the model"])
def test_a_description_that_a_kept_value_repeats_goes_on(tmp_path: Path,
                                                         values: dict[str, str]) -> None:
    """A description is removed because it may hold an identifier, not because it
    is one: its words in a kept attribute are no leak. (The guard took 'Brain',
    the study description of pydicom's own MR test files, for an original and
    quarantined every series whose position reference indicator said 'Brain'.)"""
    spec = SeriesSpec(Patient("MRN-DESC-1", "Quist^Karla"), instances=2)
    series, outputs = _run(tmp_path, spec, **values)
    assert series.status is Status.DONEPROCESSING, series.error
    out = dcmread(outputs[0])
    assert "StudyDescription" not in out and "SeriesDescription" not in out


def test_a_name_in_a_description_still_leaks_from_kept_text(tmp_path: Path) -> None:
    """What a description holds is still found through the identifiers: the
    patient's name, copied from it into a kept attribute."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text('version: "keeps comments"\nattributes:\n  ImageComments: keep\n')
    spec = SeriesSpec(Patient("MRN-DESC-2", "Quist^Karla"), instances=1)
    series, _ = _run(tmp_path, spec, DeidConfig.from_settings([], str(recipe)),
                     StudyDescription="MR brain Quist", ImageComments="MR brain Quist")
    assert series.status is Status.QUARANTINED
    assert "(0020,4000)" in (series.error or "")


def test_pydicoms_own_mr_series_goes_on(tmp_path: Path) -> None:
    """pydicom's dicomdirtests MR series: study description and position
    reference indicator are both 'Brain'."""
    folder = Path(get_testdata_file("dicomdirtests/98892003/MR2/4950")).parent
    (tmp_path / "src").mkdir()
    for name in ("4950", "4981", "5011"):  # one series of the folder
        shutil.copy(folder / name, tmp_path / "src" / f"{name}.dcm")
    ctx = _context(tmp_path)
    series_id = _ingest(ctx, tmp_path / "src")
    deidentify_series(ctx, series_id)
    with Session(ctx.engine) as session:
        series = session.get(Series, series_id)
        assert series is not None
        assert series.status is Status.DONEPROCESSING, series.error
        assert {i.status for i in session.exec(select(Image))} == {Status.DONEPROCESSING}


def test_a_series_under_rtnuidsopt_goes_on(tmp_path: Path) -> None:
    """Retain UIDs keeps every instance UID, the file meta's copy of the SOP
    Instance UID and references to the other instances included: none is an
    original of the output. (The guard counted the file meta's as identifying
    whatever the options and quarantined every series under rtnUIDsOpt.)"""
    spec = SeriesSpec(Patient("MRN-UIDS-1", "Kept^Uma"), instances=3)
    originals = [dcmread(p) for p in write_series(spec, tmp_path / "given")]
    series, outputs = _run(tmp_path, spec, DeidConfig.from_settings(["rtnUIDsOpt"], None))
    assert series.status is Status.DONEPROCESSING, series.error
    out = dcmread(outputs[0])
    assert out.SOPInstanceUID in {ds.SOPInstanceUID for ds in originals}
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID


def test_a_short_placeholder_uid_kept_under_rtnuidsopt_goes_on(tmp_path: Path) -> None:
    """DCMTK writes "0" for a reference it does not know (pydicom's reportsi.dcm):
    too short to be an original, it was never learnt as a UID the options keep
    either, and so was taken for a UID the relay did not mint."""
    reference = Dataset()
    reference.ReferencedSOPClassUID, reference.ReferencedSOPInstanceUID = "0", "0"
    spec = SeriesSpec(Patient("MRN-UIDS-2", "Kept^Ugo"), instances=2)
    series, outputs = _run(tmp_path, spec, DeidConfig.from_settings(["rtnUIDsOpt"], None),
                           ReferencedImageSequence=Sequence([reference]))
    assert series.status is Status.DONEPROCESSING, series.error
    assert dcmread(outputs[0]).ReferencedImageSequence[0].ReferencedSOPInstanceUID == "0"
