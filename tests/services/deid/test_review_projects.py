"""deid per project: a project under review holds its series in REVIEW, unqueued; a
project without review sends them on, in the same relay."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from relay_shared.models import OutboxMessage, Series, Status
from relay_shared.projects import ProjectsRegistry
from tests.services.deid import test_projects
from tests.services.deid.test_projects import PATIENT, _through
from tests.support.dicom_factory import SeriesSpec, write_series

REVIEWED = test_projects.PROJECTS.replace(
    "    deid: {key_id: trial1, secret_env: TRIAL_SECRET}\n",
    "    deid: {key_id: trial1, secret_env: TRIAL_SECRET}\n    review: {mode: all}\n")


@pytest.fixture
def relay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(test_projects, "PROJECTS", REVIEWED)
    return test_projects.relay.__wrapped__(tmp_path, monkeypatch)  # type: ignore[attr-defined]


def test_only_the_reviewed_projects_series_wait(relay, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    contexts, _ = relay
    assert isinstance(contexts.registry, ProjectsRegistry)
    for name, modality in (("ct", "CT"), ("mr", "MR")):
        write_series(SeriesSpec(PATIENT, instances=2, modality=modality), tmp_path / name)
        _through(relay, tmp_path / name)
    with Session(contexts.base.engine) as session:
        by_project = {s.project: s for s in session.exec(select(Series))}
        queued = {m.series_id for m in session.exec(select(OutboxMessage).where(
            OutboxMessage.queue == "relay.send"))}
    assert by_project["trial"].status is Status.REVIEW
    assert by_project["registry"].status is Status.DONEPROCESSING
    assert queued == {by_project["registry"].id}
