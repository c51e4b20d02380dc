"""The API's projects: series and studies filtered by project, the projects in force
(names for all, the configuration without secrets for admins), release and drop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from relay_shared.db import session_scope
from relay_shared.models import Image, OutboxMessage, Series, Status
from relay_shared.runtime import Runtime
from tests.services.api.seed import Seeded, client, make_runtime, seed

PROJECTS = """\
version: 1
destinations:
  lung-orthanc: {kind: orthanc, url: "http://127.0.0.1:9", password_env: LUNG_PASSWORD}
projects:
  - name: lung-trial
    match: {header: {Modality: {in: [CT]}}}
    deid: {key_id: lung1, secret_env: LUNG_SECRET}
    destinations: [lung-orthanc]
  - name: review
    action: hold
    destinations: [lung-orthanc]
"""
SECRETS = {"LUNG_PASSWORD": "orthanc-password-never-shown",
           "LUNG_SECRET": "lung-secret-never-shown-0123"}


@pytest.fixture
def rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "projects.yaml").write_text(PROJECTS)
    runtime = make_runtime(tmp_path / "var", projects=tmp_path / "projects.yaml")
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def seeded(rt: Runtime) -> Seeded:
    ids = seed(rt.engine)
    with session_scope(rt.engine) as session:
        for series in session.exec(select(Series)):
            series.project = "lung-trial" if series.modality == "CT" else "review"
        held = session.get(Series, ids.processing)
        assert held is not None
        held.status = Status.HELD
    return ids


def test_series_and_studies_are_filtered_by_project(rt: Runtime, seeded: Seeded) -> None:
    api = client(rt)
    lung = api.get("/api/v1/series", params={"project": "lung-trial"}).json()
    assert {s["id"] for s in lung["items"]} == {seeded.done, seeded.failed, seeded.partial}
    assert {s["project"] for s in lung["items"]} == {"lung-trial"}
    assert api.get("/api/v1/series", params={"project": "nothing"}).json()["total"] == 0
    studies = api.get("/api/v1/studies", params={"project": "review"}).json()
    assert studies["total"] == 1 and studies["items"][0]["series_count"] == 2


def test_every_role_gets_the_names_and_only_admins_the_configuration(rt: Runtime) -> None:
    reader = client(rt).get("/api/v1/projects").json()
    assert reader["names"] == ["lung-trial", "review"] and reader["configuration"] is None
    admin = client(rt, "admin").get("/api/v1/projects")
    assert admin.json()["configuration"]["projects"][0]["deid"]["secret_env"] == "LUNG_SECRET"
    assert admin.json()["configuration"]["projects"][0]["match"]["header"]["Modality"] == {
        "in": ["CT"]}
    assert not any(secret in admin.text for secret in SECRETS.values())


def test_release_queues_a_held_series_for_deid(rt: Runtime, seeded: Seeded) -> None:
    response = client(rt, "operator").post(f"/api/v1/series/{seeded.processing}/release")
    assert response.status_code == 202
    assert response.json() == {"series_id": seeded.processing, "project": "review",
                               "status": "NEW"}
    with Session(rt.engine) as session:
        series = session.get(Series, seeded.processing)
        assert series is not None and series.status is Status.NEW
    assert client(rt, "operator").post(
        f"/api/v1/series/{seeded.processing}/release").status_code == 409


def test_drop_ends_a_held_series_ignored_without_its_files(rt: Runtime, seeded: Seeded) -> None:
    work = rt.store.series_dir(seeded.processing)
    work.mkdir(parents=True)
    (work / "IM0.dcm").write_bytes(b"x")
    response = client(rt, "operator").post(f"/api/v1/series/{seeded.processing}/drop")
    assert response.status_code == 200 and response.json()["status"] == "IGNORED"
    assert not work.exists()
    with Session(rt.engine) as session:
        images = session.exec(select(Image).where(Image.series_id == seeded.processing))
        assert {i.status for i in images} == {Status.IGNORED}
        assert not list(session.exec(select(OutboxMessage).where(
            OutboxMessage.series_id == seeded.processing)))


def test_a_series_that_is_not_held_cannot_be_released_or_dropped(
        rt: Runtime, seeded: Seeded) -> None:
    api = client(rt, "operator")
    for action in ("release", "drop"):
        response = api.post(f"/api/v1/series/{seeded.done}/{action}")
        assert response.status_code == 409 and "only a HELD series" in response.json()["detail"]
