"""deid on a real SQLite database and real files: leaks, disagreements, vanished files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydicom import dcmread
from sqlmodel import Session, select

from relay_deid.handlers import DeidContext, deidentify_series
from relay_ingest.handlers import claim, ingest_claimed
from relay_shared.db import make_engine, upgrade
from relay_shared.deid import DeidConfig, Pseudonymizer
from relay_shared.models import Image, OutboxMessage, Series, Status
from relay_shared.paths import WorkStore
from tests.support.dicom_factory import Patient, SeriesSpec, make_instance, write_series

PSEUDONYMIZER = Pseudonymizer(b"deid-handler-test-secret")


def _context(tmp_path: Path, config: DeidConfig | None = None) -> DeidContext:
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    upgrade(url)
    store = WorkStore(tmp_path / "work", tmp_path / "quarantine")
    return DeidContext(make_engine(url), store, PSEUDONYMIZER,
                       config or DeidConfig.from_settings(["rtnLongModifDatesOpt"], None),
                       "relay.send")


def _ingest(ctx: DeidContext, folder: Path) -> int:
    copy = folder.parent / "incoming" / folder.name
    shutil.copytree(folder, copy)
    (series_id,) = ingest_claimed(claim(copy, ctx.store), ctx.engine, ctx.store,
                                  PSEUDONYMIZER.uid, "relay.deid")
    return series_id


def _series(ctx: DeidContext, series_id: int) -> Series:
    with Session(ctx.engine) as session:
        series = session.get(Series, series_id)
        assert series is not None
        return series


def _statuses(ctx: DeidContext) -> list[Status]:
    with Session(ctx.engine) as session:
        return sorted(i.status for i in session.exec(select(Image)))


def test_a_series_is_deidentified_once_however_often_it_is_delivered(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    spec = SeriesSpec(Patient("MRN-1", "Curie^Marie"), instances=4)
    write_series(spec, tmp_path / "src")
    series_id = _ingest(ctx, tmp_path / "src")
    deidentify_series(ctx, series_id)
    deidentify_series(ctx, series_id)  # a redelivered message
    assert _series(ctx, series_id).status is Status.DONEPROCESSING
    assert _statuses(ctx) == [Status.DONEPROCESSING] * 4
    with Session(ctx.engine) as session:
        assert len(list(session.exec(select(OutboxMessage).where(
            OutboxMessage.queue == "relay.send")))) == 1
    outputs = sorted((ctx.store.series_dir(series_id) / "deidentified").iterdir())
    first = dcmread(outputs[0])
    assert first.PatientID != "MRN-1" and first.SOPInstanceUID not in spec.sop_uids
    assert first.PatientIdentityRemoved == "YES"


def test_a_recipe_that_keeps_the_name_in_free_text_is_quarantined(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text('version: "leaky"\nattributes:\n  ImageComments: keep\n')
    ctx = _context(tmp_path, DeidConfig.from_settings(["rtnLongModifDatesOpt"], str(recipe)))
    spec = SeriesSpec(Patient("MRN-2", "Franklin^Rosalind"), instances=3)
    write_series(spec, tmp_path / "src")  # ImageComments holds the patient id
    series_id = _ingest(ctx, tmp_path / "src")
    deidentify_series(ctx, series_id)
    series = _series(ctx, series_id)
    assert series.status is Status.QUARANTINED
    assert "(0020,4000)" in (series.error or "")  # ImageComments, by path
    assert "MRN-2" not in (series.error or "")  # never the value itself
    assert _statuses(ctx) == [Status.QUARANTINED] * 3
    assert not list((ctx.store.series_dir(series_id) / "deidentified").glob("*.dcm"))
    with Session(ctx.engine) as session:
        assert not list(session.exec(select(OutboxMessage).where(
            OutboxMessage.queue == "relay.send")))


def test_images_that_disagree_on_the_patient_hold_the_series(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    spec = SeriesSpec(Patient("MRN-3", "Meitner^Lise"), instances=3)
    write_series(spec, tmp_path / "src")
    other = make_instance(spec, 2)
    other.PatientID = "MRN-OTHER"
    other.save_as(tmp_path / "src" / "IM00002.dcm", enforce_file_format=True)
    series_id = _ingest(ctx, tmp_path / "src")
    deidentify_series(ctx, series_id)
    series = _series(ctx, series_id)
    assert series.status is Status.FAILED
    assert "disagree on PatientID" in (series.error or "")


def test_a_vanished_original_fails_its_image_and_the_rest_goes_on(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    write_series(SeriesSpec(Patient("MRN-4", "Hodgkin^Dorothy"), instances=3), tmp_path / "src")
    series_id = _ingest(ctx, tmp_path / "src")
    with Session(ctx.engine) as session:
        victim = session.exec(select(Image)).first()
        assert victim is not None and victim.id is not None
    ctx.store.original(series_id, victim.id).unlink()
    deidentify_series(ctx, series_id)
    assert _statuses(ctx) == [Status.DONEPROCESSING, Status.DONEPROCESSING, Status.FAILED]
    with Session(ctx.engine) as session:
        failed = session.get(Image, victim.id)
        assert failed is not None and "FileNotFoundError" in (failed.reason or "")


@pytest.mark.parametrize("instances", [2])
def test_the_same_patient_gets_the_same_pseudonym_in_two_studies(tmp_path: Path,
                                                                 instances: int) -> None:
    ctx = _context(tmp_path)
    patient = Patient("MRN-5", "Lovelace^Ada")
    ids = []
    for n in range(2):
        write_series(SeriesSpec(patient, instances=instances), tmp_path / f"src{n}")
        series_id = _ingest(ctx, tmp_path / f"src{n}")
        deidentify_series(ctx, series_id)
        output = next((ctx.store.series_dir(series_id) / "deidentified").iterdir())
        ids.append(dcmread(output).PatientID)
    assert ids[0] == ids[1] != "MRN-5"


def test_the_guard_quarantines_what_the_profiles_own_originals_miss(tmp_path: Path) -> None:
    """A kept ImageComments holds a telephone number and the patient's name in
    Korean: neither is an original value the profile collected (the name is
    stored in Latin letters with its Hangul form as the ideographic group)."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text('version: "keeps comments"\nattributes:\n  ImageComments: keep\n')
    ctx = _context(tmp_path, DeidConfig.from_settings(["rtnLongModifDatesOpt"], str(recipe)))
    spec = SeriesSpec(Patient("MRN-6", "Kim^Minjun=김^민준"), instances=2)
    write_series(spec, tmp_path / "src")
    for path in sorted((tmp_path / "src").iterdir()):
        ds = dcmread(path)
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.ImageComments = "보호자 연락처 +82 2 312 3456, 김민준 환자"
        ds.save_as(path)
    series_id = _ingest(ctx, tmp_path / "src")
    deidentify_series(ctx, series_id)
    series = _series(ctx, series_id)
    assert series.status is Status.QUARANTINED
    assert "guard: (0020,4000)" in (series.error or "")
    assert "+82" not in (series.error or "") and "김" not in (series.error or "")
    assert _statuses(ctx) == [Status.QUARANTINED] * 2
