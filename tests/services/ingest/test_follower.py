"""The Orthanc follower against a fake changes feed, on a real SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from relay_ingest.follower import (
    Change,
    ChangesPage,
    SourceError,
    delete_done,
    follow_round,
    load_cursor,
)
from relay_ingest.origin import OriginSeal
from relay_shared.db import make_engine, session_scope, upgrade
from relay_shared.deid import Pseudonymizer
from relay_shared.models import FollowCursor, FollowedSeries, Image, Series, Status

UID_OF = Pseudonymizer(b"follower-test-secret").uid


class FakeOrthanc:
    """A changes feed, its series and their instance files, in memory."""

    name = "http://clinical.example:8042"
    sealer = OriginSeal(b"follower-test-secret")

    def __init__(self) -> None:
        self.changes_log: list[Change] = []
        self.series_map: dict[str, list[str]] = {}
        self.deleted: list[str] = []
        self.broken: set[str] = set()

    def add_series(self, orthanc_id: str, instances: int) -> None:
        self.series_map[orthanc_id] = [f"{orthanc_id}-i{n}" for n in range(instances)]
        seq = len(self.changes_log) + 1
        self.changes_log += [Change(seq, "NewSeries", orthanc_id),
                             Change(seq + 1, "StableSeries", orthanc_id)]

    def changes(self, since: int, limit: int) -> ChangesPage:
        page = [c for c in self.changes_log if c.seq > since][:limit]
        last = page[-1].seq if page else since
        return ChangesPage(page, last, done=last >= len(self.changes_log))

    def last_change(self) -> int:
        return len(self.changes_log)

    def series(self, orthanc_id: str) -> dict | None:
        if orthanc_id not in self.series_map:
            return None
        return {"Instances": self.series_map[orthanc_id],
                "MainDicomTags": {"SeriesInstanceUID": f"1.2.3.{len(orthanc_id)}"}}

    def download(self, instance_id: str, target: Path) -> None:
        if instance_id in self.broken:
            raise SourceError("connection reset")
        target.write_bytes(instance_id.encode())

    def delete_series(self, orthanc_id: str) -> None:
        self.deleted.append(orthanc_id)


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    upgrade(url)
    return make_engine(url)


def _round(source: FakeOrthanc, engine, incoming: Path, from_start: bool = True) -> int:  # type: ignore[no-untyped-def]
    return follow_round(source, engine, incoming, UID_OF, batch=3,  # type: ignore[arg-type]
                        from_start=from_start)


def test_stable_series_become_finished_folders_and_the_cursor_moves(engine, tmp_path: Path
                                                                    ) -> None:  # type: ignore[no-untyped-def]
    source, incoming = FakeOrthanc(), tmp_path / "incoming"
    source.add_series("aaaa", 3)
    source.add_series("bbbb", 2)
    assert _round(source, engine, incoming) == 2
    folders = sorted(incoming.iterdir())
    assert [len(list(f.glob("*.dcm"))) for f in folders] == [3, 2]
    assert not any(".tmp" in f.name for f in folders)
    assert load_cursor(engine, source.name) == 4


def test_a_replayed_change_is_skipped(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source, incoming = FakeOrthanc(), tmp_path / "incoming"
    source.add_series("aaaa", 3)
    _round(source, engine, incoming)
    with session_scope(engine) as session:  # as if the feed were read again from the start
        session.exec(select(FollowCursor)).one().last_change = 0
    assert _round(source, engine, incoming) == 0
    assert len(list(incoming.iterdir())) == 1


def test_a_failed_download_leaves_nothing_and_is_taken_next_round(engine, tmp_path: Path
                                                                  ) -> None:  # type: ignore[no-untyped-def]
    source, incoming = FakeOrthanc(), tmp_path / "incoming"
    source.add_series("aaaa", 3)
    source.broken.add("aaaa-i2")
    with pytest.raises(SourceError):
        _round(source, engine, incoming)
    assert not any(incoming.iterdir())
    assert load_cursor(engine, source.name) == 0
    source.broken.clear()
    assert _round(source, engine, incoming) == 1


def test_a_new_follower_starts_at_the_end_of_the_feed(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source, incoming = FakeOrthanc(), tmp_path / "incoming"
    source.add_series("old", 2)
    assert _round(source, engine, incoming, from_start=False) == 0
    source.add_series("new", 1)
    assert _round(source, engine, incoming, from_start=False) == 1


def test_a_series_leaves_the_source_only_when_every_instance_is_done(engine, tmp_path: Path
                                                                     ) -> None:  # type: ignore[no-untyped-def]
    source, incoming = FakeOrthanc(), tmp_path / "incoming"
    source.add_series("aaaa", 2)
    _round(source, engine, incoming)
    with Session(engine) as session:
        taken = session.exec(select(FollowedSeries)).one()
    with session_scope(engine) as session:
        series = Series(series_uid=taken.series_uid, status=Status.DONE, trace_id="t")
        session.add(series)
        session.flush()
        session.add(Image(series_id=series.id, sop_uid="2.25.1", status=Status.DONE))
        failed = Image(series_id=series.id, sop_uid="2.25.2", status=Status.FAILED)
        session.add(failed)
    assert delete_done(source, engine) == 0  # type: ignore[arg-type]
    with session_scope(engine) as session:
        session.get(Image, failed.id).status = Status.DONE  # type: ignore[union-attr]
    assert delete_done(source, engine) == 1  # type: ignore[arg-type]
    assert source.deleted == ["aaaa"]
    assert delete_done(source, engine) == 0  # type: ignore[arg-type]
