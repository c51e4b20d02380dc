"""ingest routes each new series, on a real SQLite database and real files: a drop keeps
only the record, a hold keeps the files without queueing, and a dropped series delivered
again after the rules changed is routed again."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlmodel import Session, select

from relay_ingest.handlers import claim, ingest_claimed
from relay_ingest.origin import (
    ORIGIN_FILE,
    OriginSeal,
    note_folder_origin,
    read_origin,
    write_origin,
)
from relay_ingest.routing import IngestRouter
from relay_shared.db import make_engine, upgrade
from relay_shared.deid import Pseudonymizer
from relay_shared.models import Image, OutboxMessage, Series, Status
from relay_shared.paths import WorkStore
from relay_shared.projects import Arrival, ProjectsRegistry
from relay_shared.settings import Settings
from tests.support.dicom_factory import Patient, SeriesSpec, write_series

UID_OF = Pseudonymizer(b"ingest-test-secret").uid
SEAL = OriginSeal(b"ingest-test-secret")
RULES = """\
version: 1
destinations:
  out: {{kind: outbox, path: out}}
projects:
  - name: ct-room
    match: {{source: scp, calling_ae: CT_ROOM1}}
    destinations: [out]
  - name: mr
    match: {{header: {{Modality: {{equals: MR}}}}}}
    action: {mr_action}
    destinations: [out]
"""


@pytest.fixture
def relay(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    upgrade(url)
    (tmp_path / "projects.yaml").write_text(RULES.format(mr_action="hold"))
    settings = Settings(data_dir=tmp_path, projects=tmp_path / "projects.yaml")
    registry = ProjectsRegistry(settings)
    return (make_engine(url), WorkStore(tmp_path / "work", tmp_path / "quarantine"),
            registry, IngestRouter(registry, settings))


def _ingest(relay, folder: Path, arrival: Arrival | None = None,  # type: ignore[no-untyped-def]
            sealer: OriginSeal = SEAL, subdir: str | None = None) -> int:
    engine, store, _registry, router = relay
    copy = folder.parent / "incoming" / f"{folder.name}-copy"
    shutil.copytree(folder, copy)
    if arrival is not None:
        write_origin(copy, arrival, sealer)
    note_folder_origin(copy, subdir, SEAL)  # what the watch loop does before it claims
    claimed = claim(copy, store)
    (series_id,) = ingest_claimed(claimed, engine, store, UID_OF, "relay.deid",
                                  router.route, arrival=read_origin(claimed, SEAL))
    return series_id


def _series(engine, series_id: int) -> tuple[Series, list[Image], int]:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        series = session.get(Series, series_id)
        images = list(session.exec(select(Image).where(Image.series_id == series_id)))
        queued = len(list(session.exec(select(OutboxMessage).where(
            OutboxMessage.series_id == series_id))))
        return series, images, queued


def test_the_calling_ae_recorded_by_the_scp_routes_the_series(relay, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_series(SeriesSpec(Patient("P1", "Doe^Jane"), instances=2), tmp_path / "ct")
    series_id = _ingest(relay, tmp_path / "ct", Arrival("scp", calling_ae="CT_ROOM1"))
    series, _images, queued = _series(relay[0], series_id)
    assert (series.project, series.source, series.status) == ("ct-room", "scp", Status.NEW)
    assert series.projects_sha256 == relay[2].current.sha256 and queued == 1


def test_a_series_no_project_takes_keeps_only_its_record(relay, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine, store, _, _ = relay
    write_series(SeriesSpec(Patient("P1", "Doe^Jane"), instances=3), tmp_path / "ct")
    series_id = _ingest(relay, tmp_path / "ct")  # a folder: not the CT room's SCP
    series, images, queued = _series(engine, series_id)
    assert series.status is Status.IGNORED and series.project is None and queued == 0
    assert series.error == ("no project takes this series: ct-room: source in ['scp'] does "
                            "not hold; mr: Modality equals 'MR' does not hold")
    assert [i.status for i in images] == [Status.IGNORED] * 3
    assert not store.series_dir(series_id).exists()


def test_a_held_series_keeps_its_files_unqueued_and_so_do_its_later_instances(
        relay, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine, store, _, _ = relay
    spec = SeriesSpec(Patient("P1", "Doe^Jane"), instances=4, modality="MR")
    write_series(spec, tmp_path / "mr")
    first = tmp_path / "first"
    first.mkdir()
    for path in sorted((tmp_path / "mr").iterdir())[:2]:
        shutil.copy(path, first / path.name)
    series_id = _ingest(relay, first)
    assert _ingest(relay, tmp_path / "mr") == series_id
    series, images, queued = _series(engine, series_id)
    assert (series.status, series.project, queued) == (Status.HELD, "mr", 0)
    assert len(images) == 4 and all(store.original(series_id, i.id).exists() for i in images)


def test_a_dropped_series_delivered_again_is_routed_by_the_rules_in_force(
        relay, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine, store, registry, _ = relay
    (tmp_path / "projects.yaml").write_text(RULES.format(mr_action="drop"))
    registry.reload()
    write_series(SeriesSpec(Patient("P1", "Doe^Jane"), instances=2, modality="MR"),
                 tmp_path / "mr")
    series_id = _ingest(relay, tmp_path / "mr")
    assert _series(engine, series_id)[0].status is Status.IGNORED
    (tmp_path / "projects.yaml").write_text(RULES.format(mr_action="send"))
    registry.reload()
    assert _ingest(relay, tmp_path / "mr") == series_id
    series, images, queued = _series(engine, series_id)
    assert (series.status, series.project, queued) == (Status.NEW, "mr", 1)
    assert [i.status for i in images] == [Status.NEW] * 2
    assert all(store.original(series_id, i.id).exists() for i in images)


def test_an_origin_file_that_cannot_be_read_means_a_folder_delivery(tmp_path: Path) -> None:
    (tmp_path / ".relay-origin.json").write_text("{not json")
    assert read_origin(tmp_path, SEAL) == Arrival("folder")


def test_an_origin_the_relay_did_not_seal_cannot_claim_the_scp(relay, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Whoever can drop a folder into incoming could otherwise pick the project (and so the
    de-identification) its series gets."""
    write_series(SeriesSpec(Patient("P1", "Doe^Jane"), instances=2), tmp_path / "ct")
    forged = OriginSeal(b"a key the relay does not hold")
    series_id = _ingest(relay, tmp_path / "ct", Arrival("scp", calling_ae="CT_ROOM1"), forged)
    series, _images, _queued = _series(relay[0], series_id)
    assert (series.project, series.source, series.status) == (None, "folder", Status.IGNORED)


def test_a_forged_origin_in_a_projects_subfolder_gives_way_to_what_the_relay_saw(
        tmp_path: Path) -> None:
    folder = tmp_path / "delivery"
    folder.mkdir()
    (folder / ORIGIN_FILE).write_text(
        '{"source": "scp", "calling_ae": "CT_ROOM1", "incoming_subdir": null, "seal": "00"}')
    note_folder_origin(folder, "research", SEAL)
    assert read_origin(folder, SEAL) == Arrival("folder", incoming_subdir="research")
    unsealed = tmp_path / "unsealed"
    unsealed.mkdir()
    (unsealed / ORIGIN_FILE).write_text('{"source": "scp", "calling_ae": "CT_ROOM1"}')
    note_folder_origin(unsealed, None, SEAL)
    assert not (unsealed / ORIGIN_FILE).exists()
    assert read_origin(unsealed, SEAL) == Arrival("folder")
