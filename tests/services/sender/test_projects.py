"""sender per project, on SQLite and real folders: only the project's named destinations
(two of one kind, deliveries recorded under their names), and when a study is whole."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from relay_sender.destinations import FolderDestination
from relay_sender.handlers import SendContext
from relay_sender.projects import ProjectSenders, build_named, study_whole
from relay_shared.db import make_engine, session_scope, upgrade
from relay_shared.models import Delivery, Image, Series, Stage, Status, Study, utcnow
from relay_shared.paths import WorkStore
from relay_shared.projects import ProjectsRegistry
from relay_shared.settings import Settings
from tests.support.dicom_factory import Patient, SeriesSpec, make_instance

PROJECTS = """\
version: 1
destinations:
  near: {kind: outbox, path: near}
  far: {kind: outbox, path: /tmp/unused-by-this-project}
  mirror: {kind: outbox, path: mirror}
projects:
  - name: trial
    destinations: [near, mirror]
"""


@pytest.fixture
def senders(tmp_path: Path) -> ProjectSenders:
    (tmp_path / "projects.yaml").write_text(PROJECTS)
    settings = Settings(data_dir=tmp_path, projects=tmp_path / "projects.yaml")
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    upgrade(url)
    base = SendContext(make_engine(url), WorkStore(tmp_path / "work", tmp_path / "quarantine"),
                       [FolderDestination(tmp_path / "default-outbox")])
    return ProjectSenders(base, ProjectsRegistry(settings), settings)


def _deidentified_series(senders: ProjectSenders, project: str, study_id: int | None = None,
                         status: Status = Status.DONEPROCESSING) -> int:
    spec = SeriesSpec(Patient("PSN1", "PSEUDONYM^A"), instances=2)
    with session_scope(senders.base.engine) as session:
        if study_id is None:
            study = Study(study_uid=spec.study_uid)
            session.add(study)
            session.flush()
            study_id = study.id
        series = Series(series_uid=spec.series_uid, study_id=study_id, status=status,
                        stage=Stage.SEND, trace_id="t", project=project,
                        projects_sha256=senders.registry.current.sha256)
        session.add(series)
        session.flush()
        assert series.id is not None
        for n in range(2):
            image = Image(series_id=series.id, sop_uid=spec.sop_uids[n],
                          status=Status.DONEPROCESSING)
            session.add(image)
            session.flush()
            assert image.id is not None
            path = senders.base.store.deidentified(series.id, image.id)
            path.parent.mkdir(parents=True, exist_ok=True)
            make_instance(spec, n).save_as(path, enforce_file_format=True)
        return series.id


def test_a_series_goes_only_to_its_projects_named_destinations(
        senders: ProjectSenders, tmp_path: Path) -> None:
    series_id = _deidentified_series(senders, "trial")
    senders.send(series_id)
    assert len(list((tmp_path / "near").rglob("*.dcm"))) == 2  # relative to the file
    assert len(list((tmp_path / "mirror").rglob("*.dcm"))) == 2
    assert not (tmp_path / "default-outbox").exists()
    with Session(senders.base.engine) as session:
        assert session.get(Series, series_id).status is Status.DONE  # type: ignore[union-attr]
        assert sorted({d.destination for d in session.exec(select(Delivery))}) == [
            "mirror", "near"]


def test_a_destination_is_known_by_its_name(senders: ProjectSenders) -> None:
    projects = senders.registry.current
    built = build_named("far", projects.destinations["far"], projects, senders.settings, None)
    assert built.name == "far" and FolderDestination.name == "outbox"


def test_a_study_is_whole_once_nothing_is_before_send_and_it_has_been_stable(
        senders: ProjectSenders) -> None:
    engine = senders.base.engine
    first = _deidentified_series(senders, "trial")
    with Session(engine) as session:
        study_id = session.get(Series, first).study_id  # type: ignore[union-attr]
    assert not study_whole(engine, study_id, "trial", 60)  # it has just changed
    assert study_whole(engine, study_id, "trial", 0)
    other_project = _deidentified_series(senders, "elsewhere", study_id, Status.PROCESSING)
    assert study_whole(engine, study_id, "trial", 0)  # another project's series is its own
    second = _deidentified_series(senders, "trial", study_id, Status.PROCESSING)
    assert not study_whole(engine, study_id, "trial", 0)  # a series still before send
    with session_scope(engine) as session:
        for series_id in (first, second, other_project):
            series = session.get(Series, series_id)
            assert series is not None
            series.status, series.updated_at = Status.DONEPROCESSING, utcnow()
            for image in session.exec(select(Image).where(Image.series_id == series_id)):
                image.updated_at = utcnow() - timedelta(seconds=120)
    assert study_whole(engine, study_id, "trial", 60)  # the images time it, not the series
