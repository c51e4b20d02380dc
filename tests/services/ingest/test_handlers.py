"""ingest on a real SQLite database and real files: idempotence and bad input."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from blake3 import blake3
from pydicom.uid import DeflatedExplicitVRLittleEndian
from sqlmodel import Session, select

from relay_ingest.handlers import claim, ingest_claimed
from relay_shared.db import make_engine, upgrade
from relay_shared.deid import Pseudonymizer
from relay_shared.models import Event, Image, OutboxMessage, Series, Status
from relay_shared.paths import WorkStore
from tests.support.dicom_factory import Patient, SeriesSpec, make_instance, write_series

UID_OF = Pseudonymizer(b"ingest-test-secret").uid


@pytest.fixture
def env(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    upgrade(url)
    store = WorkStore(tmp_path / "work", tmp_path / "quarantine")
    return make_engine(url), store, tmp_path


def _ingest(env, folder: Path) -> list[int]:  # type: ignore[no-untyped-def]
    engine, store, tmp = env
    copy = tmp / "incoming" / folder.name
    shutil.copytree(folder, copy)
    return ingest_claimed(claim(copy, store), engine, store, UID_OF, "relay.deid")


def _images(engine) -> list[Image]:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return list(session.exec(select(Image)))


def test_a_series_is_recorded_moved_and_queued(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine, store, _ = env
    spec = SeriesSpec(Patient("P1", "Doe^Jane"), instances=5)
    write_series(spec, tmp_path / "src")
    (series_id,) = _ingest(env, tmp_path / "src")
    images = _images(engine)
    assert len(images) == 5 and {i.status for i in images} == {Status.NEW}
    assert all(store.original(series_id, i.id).exists() for i in images)
    assert {i.sop_uid for i in images} == {UID_OF(u) for u in spec.sop_uids}
    with Session(engine) as session:
        assert len(list(session.exec(select(OutboxMessage)))) == 1
        assert not list(session.exec(select(Series).where(Series.series_uid == spec.series_uid)))
    assert not any((store.claimed_dir).iterdir())


def test_the_same_delivery_twice_adds_no_row(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine, _, _ = env
    write_series(SeriesSpec(Patient("P1", "Doe^Jane"), instances=4), tmp_path / "src")
    first = _ingest(env, tmp_path / "src")
    second = _ingest(env, tmp_path / "src")
    assert first == second
    assert len(_images(engine)) == 4
    with Session(engine) as session:
        details = [e.detail for e in session.exec(select(Event).where(Event.kind == "received"))]
    assert details[-1] == "0 new instance(s), 4 already held, 0 conflicting"


def test_a_reused_sop_uid_with_other_content_is_kept_aside(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine, store, _ = env
    spec = SeriesSpec(Patient("P1", "Doe^Jane"), instances=3)
    write_series(spec, tmp_path / "src")
    _ingest(env, tmp_path / "src")
    changed = make_instance(spec, 1)
    changed.ImageComments = "a different instance under the same UID"
    changed.save_as(tmp_path / "src" / "IM00001.dcm", enforce_file_format=True)
    (series_id,) = _ingest(env, tmp_path / "src")
    failed = [i for i in _images(engine) if i.status is Status.FAILED]
    assert len(failed) == 1 and "reused with different content" in (failed[0].reason or "")
    assert Path(failed[0].quarantine_path or "").exists()
    assert len([i for i in _images(engine) if i.status is Status.NEW]) == 3
    assert store.quarantine_for(series_id).is_dir()


def _received_detail(engine) -> str | None:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return [e.detail for e in session.exec(select(Event).where(Event.kind == "received"))][-1]


def _ingested_three(env, tmp_path: Path) -> tuple[SeriesSpec, list[Path], dict[str, Path]]:  # type: ignore[no-untyped-def]
    """Three instances ingested once: their spec, their files, each file by its image's UID."""
    spec = SeriesSpec(Patient("P1", "Doe^Jane"), instances=3)
    paths = write_series(spec, tmp_path / "src")
    _ingest(env, tmp_path / "src")
    return spec, paths, {UID_OF(uid): path for uid, path in zip(spec.sop_uids, paths, strict=True)}


def test_the_blake3_of_each_file_tells_a_duplicate_from_a_conflict(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine = env[0]
    spec, paths, by_uid = _ingested_three(env, tmp_path)
    images = _images(engine)
    assert {i.sop_uid: i.content_blake3 for i in images} == {
        uid: blake3(path.read_bytes()).hexdigest() for uid, path in by_uid.items()}
    assert all(i.content_sha256 is None for i in images)

    _resent_then_one_changed(env, spec, paths, tmp_path)


def test_a_row_with_only_a_sha256_tells_duplicate_from_conflict(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine = env[0]
    spec, paths, by_uid = _ingested_three(env, tmp_path)
    # Each row as written before content_blake3 existed: the SHA-256 of its file alone.
    with Session(engine) as session:
        for image in session.exec(select(Image)):
            assert image.content_blake3 and image.content_sha256 is None
            assert image.sop_uid is not None
            image.content_blake3 = None
            image.content_sha256 = hashlib.sha256(by_uid[image.sop_uid].read_bytes()).hexdigest()
            session.add(image)
        session.commit()

    _resent_then_one_changed(env, spec, paths, tmp_path)


def _resent_then_one_changed(env, spec: SeriesSpec, paths: list[Path], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The same files again are duplicates; one of them changed under its UID is a conflict."""
    engine = env[0]
    _ingest(env, tmp_path / "src")
    assert _received_detail(engine) == "0 new instance(s), 3 already held, 0 conflicting"
    changed = make_instance(spec, 1)
    changed.ImageComments = "a different instance under the same UID"
    changed.save_as(paths[1], enforce_file_format=True)
    _ingest(env, tmp_path / "src")
    assert _received_detail(engine) == "0 new instance(s), 2 already held, 1 conflicting"
    failed = [i for i in _images(engine) if i.status is Status.FAILED]
    assert len(failed) == 1 and "reused with different content" in (failed[0].reason or "")


def test_mixed_studies_in_one_series_are_set_aside(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine, _, _ = env
    spec = SeriesSpec(Patient("P1", "Doe^Jane"), instances=4)
    write_series(spec, tmp_path / "src")
    odd = make_instance(spec, 3)
    odd.StudyInstanceUID = "1.2.3.4.5.6"
    odd.save_as(tmp_path / "src" / "IM00003.dcm", enforce_file_format=True)
    _ingest(env, tmp_path / "src")
    failed = [i for i in _images(engine) if i.status is Status.FAILED]
    assert len(failed) == 1 and "mixed studies" in (failed[0].reason or "")
    assert len(_images(engine)) == 4


def test_a_crash_between_commit_and_move_is_finished_on_the_next_run(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine, store, _ = env
    write_series(SeriesSpec(Patient("P1", "Doe^Jane"), instances=3), tmp_path / "src")
    (series_id,) = _ingest(env, tmp_path / "src")
    lost = _images(engine)[0]
    store.original(series_id, lost.id).unlink()  # as if the process died before moving it
    _ingest(env, tmp_path / "src")
    assert store.original(series_id, lost.id).exists()
    assert len(_images(engine)) == 3


def test_a_delivery_with_nothing_readable_is_recorded_not_dropped(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine, store, _ = env
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("not an image")
    (series_id,) = _ingest(env, tmp_path / "src")
    with Session(engine) as session:
        series = session.get(Series, series_id)
        assert series is not None and series.status is Status.FAILED
    assert (store.quarantine_for(series_id) / "a.txt").exists()


def test_a_cut_deflated_file_is_set_aside_and_its_series_goes_on(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    engine, store, _ = env
    spec = SeriesSpec(Patient("P1", "Doe^Jane"), instances=4)
    *_, last = write_series(spec, tmp_path / "src")
    last.unlink()
    deflated = make_instance(spec, 3)
    deflated.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    deflated.save_as(tmp_path / "whole.dcm", enforce_file_format=True)
    data = (tmp_path / "whole.dcm").read_bytes()
    (tmp_path / "src" / "cut.dcm").write_bytes(data[:len(data) // 2])

    (series_id,) = _ingest(env, tmp_path / "src")

    images = _images(engine)
    assert sorted(i.status for i in images) == sorted([Status.NEW] * 3 + [Status.FAILED])
    (failed,) = [i for i in images if i.status is Status.FAILED]
    assert failed.reason and "deflated" in failed.reason, failed.reason
    assert (store.quarantine_for(series_id) / "cut.dcm").exists()
