"""deid per project, on a real SQLite database and real files: each project's key and
options, one pseudonym space per project, a project taken out of the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydicom import dcmread
from sqlmodel import Session, select

from relay_deid.handlers import DeidContext
from relay_deid.projects import ProjectContexts
from relay_ingest.handlers import claim, ingest_claimed
from relay_ingest.routing import IngestRouter
from relay_shared.db import make_engine, upgrade
from relay_shared.deid import DeidConfig, Pseudonymizer
from relay_shared.models import Image, Series, Status
from relay_shared.paths import WorkStore
from relay_shared.projects import ProjectsRegistry
from relay_shared.settings import Settings
from tests.support.dicom_factory import Patient, SeriesSpec, write_series

PROJECTS = """\
version: 1
destinations:
  out: {kind: outbox, path: out}
projects:
  - name: trial
    match: {header: {Modality: {equals: CT}}}
    deid: {key_id: trial1, secret_env: TRIAL_SECRET}
    destinations: [out]
  - name: registry
    match: {header: {Modality: {equals: MR}}}
    deid: {key_id: reg1, secret_env: REGISTRY_SECRET, options: [rtnLongFullDatesOpt]}
    pixels: {ocr: false}
    destinations: [out]
"""
PATIENT = Patient("MRN-4004", "Hodgkin^Dorothy", accession="ACC-4004")


@pytest.fixture
def relay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TRIAL_SECRET", "trial-secret-0123456789")
    monkeypatch.setenv("REGISTRY_SECRET", "registry-secret-0123456789")
    (tmp_path / "projects.yaml").write_text(PROJECTS)
    settings = Settings(data_dir=tmp_path, projects=tmp_path / "projects.yaml",
                        pixel_ocr=False, deid_secret="relay-wide-secret-0123456789")
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    upgrade(url)
    registry = ProjectsRegistry(settings)
    base = DeidContext(make_engine(url), WorkStore(tmp_path / "work", tmp_path / "quarantine"),
                       Pseudonymizer(settings.deid_secret.get_secret_value().encode()),
                       DeidConfig.from_settings(settings.deid_options, None), "relay.send")
    return ProjectContexts(base, registry, settings), IngestRouter(registry, settings)


def _through(relay, folder: Path) -> Path:  # type: ignore[no-untyped-def]
    contexts, router = relay
    store = contexts.base.store
    copy = folder.parent / "incoming" / folder.name
    shutil.copytree(folder, copy)
    (series_id,) = ingest_claimed(claim(copy, store), contexts.base.engine, store,
                                  contexts.base.pseudonymizer.uid, "relay.deid", router.route)
    contexts.deidentify(series_id)
    with Session(contexts.base.engine) as session:
        image = session.exec(select(Image).where(Image.series_id == series_id)).first()
        assert image is not None and image.id is not None
        assert image.status is Status.DONEPROCESSING, image.reason
        return store.deidentified(series_id, image.id)


def test_each_project_deidentifies_with_its_own_key_and_options(relay, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for name, modality in (("ct-1", "CT"), ("ct-2", "CT"), ("mr", "MR")):
        write_series(SeriesSpec(PATIENT, instances=2, modality=modality, study_date="20240315"),
                     tmp_path / name)
    ct_1, ct_2, mr = (dcmread(_through(relay, tmp_path / n)) for n in ("ct-1", "ct-2", "mr"))
    assert ct_1.PatientID == ct_2.PatientID  # one project: one pseudonym
    assert ct_1.PatientID != mr.PatientID  # two projects: two
    assert PATIENT.patient_id not in (ct_1.PatientID, mr.PatientID)
    assert ct_1.StudyDate != "20240315" and mr.StudyDate == "20240315"  # shifted; kept
    with Session(relay[0].base.engine) as session:
        assert {s.project: s.key_id for s in session.exec(select(Series))} == {
            "trial": "trial1", "registry": "reg1"}


def test_a_series_whose_project_left_the_file_fails_with_the_reason(
        relay, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    contexts, router = relay
    write_series(SeriesSpec(PATIENT, instances=1), tmp_path / "ct")
    store = contexts.base.store
    shutil.copytree(tmp_path / "ct", tmp_path / "incoming" / "ct")
    (series_id,) = ingest_claimed(claim(tmp_path / "incoming" / "ct", store),
                                  contexts.base.engine, store, contexts.base.pseudonymizer.uid,
                                  "relay.deid", router.route)
    with Session(contexts.base.engine) as session:
        series = session.get(Series, series_id)
        assert series is not None
        series.projects_sha256 = "a-version-no-process-has"
        series.project = "gone"
        session.add(series)
        session.commit()
    contexts.deidentify(series_id)
    with Session(contexts.base.engine) as session:
        series = session.get(Series, series_id)
        assert series is not None and series.status is Status.FAILED
        assert series.error == "project gone is not in the projects file in force"
