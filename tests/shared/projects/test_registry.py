"""Rereading the projects file: a new version in force, the old one kept for series in
flight, a bad edit refused with the version in force kept."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from relay_shared.metrics import PROJECTS_RELOADS
from relay_shared.projects import ProjectsRegistry
from relay_shared.settings import Settings

VERSION = """\
version: 1
destinations:
  {destination}: {{kind: outbox, path: out}}
projects:
  - name: trial
    deid: {{key_id: {key_id}}}
    destinations: [{destination}]
"""


def write(path: Path, key_id: str, destination: str = "first") -> None:
    path.write_text(VERSION.format(key_id=key_id, destination=destination))


@pytest.fixture
def registry(tmp_path: Path) -> ProjectsRegistry:
    write(tmp_path / "projects.yaml", "k1")
    return ProjectsRegistry(Settings(data_dir=tmp_path, projects=tmp_path / "projects.yaml"))


def test_a_series_in_flight_keeps_the_version_that_routed_it(
        registry: ProjectsRegistry, tmp_path: Path) -> None:
    routed_by = registry.current.sha256
    write(tmp_path / "projects.yaml", "k2", "second")
    assert registry.reload_if_changed()
    assert registry.current.projects["trial"].deid.key_id == "k2"
    found = registry.for_series("trial", routed_by)
    assert found is not None
    version, project = found
    assert version.sha256 == routed_by and project.deid.key_id == "k1"
    assert project.destinations == ("first",)


def test_an_unchanged_file_is_not_reread(registry: ProjectsRegistry) -> None:
    assert not registry.reload_if_changed()


def test_a_file_that_does_not_validate_is_refused_and_the_old_one_stays(
        registry: ProjectsRegistry, tmp_path: Path) -> None:
    in_force = registry.current.sha256
    refused = PROJECTS_RELOADS.labels(result="refused")._value.get()
    (tmp_path / "projects.yaml").write_text(VERSION.format(key_id="k2", destination="first")
                                            + "    colour: red\n")
    assert not registry.reload_if_changed()
    assert registry.current.sha256 == in_force
    assert PROJECTS_RELOADS.labels(result="refused")._value.get() == refused + 1


def test_a_project_taken_out_of_the_file_is_not_found_for_a_new_series(
        registry: ProjectsRegistry, tmp_path: Path) -> None:
    (tmp_path / "projects.yaml").write_text(VERSION.replace("name: trial", "name: other")
                                            .format(key_id="k1", destination="first"))
    assert registry.reload_if_changed()
    assert registry.for_series("trial", "not-a-version-this-process-knows") is None


async def test_sighup_rereads_the_file_at_once(registry: ProjectsRegistry,
                                               tmp_path: Path) -> None:
    path = tmp_path / "projects.yaml"
    before = path.stat()
    write(path, "k9")  # the same size; the old time put back so only the signal tells
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    stop = asyncio.Event()
    watcher = asyncio.create_task(registry.watch(stop))
    await asyncio.sleep(0.2)
    os.kill(os.getpid(), signal.SIGHUP)
    for _ in range(20):
        await asyncio.sleep(0.05)
        if registry.current.projects["trial"].deid.key_id == "k9":
            break
    stop.set()
    await watcher
    assert registry.current.projects["trial"].deid.key_id == "k9"


def test_each_reread_is_a_configuration_entry_of_the_audit_trail(tmp_path: Path) -> None:
    from sqlmodel import Session, select

    from relay_shared.db import upgrade
    from relay_shared.models import AuditRecord
    from relay_shared.runtime import build_runtime

    write(tmp_path / "projects.yaml", "k1")
    settings = Settings(data_dir=tmp_path, projects=tmp_path / "projects.yaml")
    upgrade(settings.sqlalchemy_url)
    rt = build_runtime(settings)
    write(tmp_path / "projects.yaml", "k2")
    assert rt.projects.reload()
    (tmp_path / "projects.yaml").write_text("version: 1\nprojects: [\n")
    assert not rt.projects.reload()
    with Session(rt.engine) as session:
        rows = list(session.exec(select(AuditRecord).where(
            AuditRecord.action == "configuration").order_by(AuditRecord.id)))
    rt.engine.dispose()
    assert [(r.outcome, r.actor_kind) for r in rows] == [("success", "system"),
                                                         ("failure", "system")]
    assert rt.projects.current.sha256 and rt.projects.current.sha256 in (rows[0].detail or "")
