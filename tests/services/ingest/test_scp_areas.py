"""SCP processes sharing the data volume: each stages into an area of its own, held by
a database lock while it lives. One starting hands over the areas of processes that
are gone (and what was staged before areas were), never a live one's open series;
a claimed delivery is taken in by one process at a time."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from relay_ingest import staging
from relay_shared import series_lock

pytestmark = [pytest.mark.postgres]


def _staged(area: Path, name: str) -> Path:
    folder = area / name
    folder.mkdir(parents=True)
    (folder / "IM1.dcm").write_bytes(b"whole file")
    return folder


def test_a_starting_scp_takes_up_the_areas_of_gone_processes_only(
        tmp_path: Path, postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    root, incoming = tmp_path / "staging", tmp_path / "incoming"
    live = staging.process_area(root, "pod-a:1")
    gone = staging.process_area(root, "pod-b:1")
    _staged(live, "scp-open")
    (live / ".receiving").mkdir()
    (live / ".receiving" / "x.receiving").write_bytes(b"half")
    _staged(gone, "scp-left")
    _staged(root, "scp-before-areas")
    holder_ready, release = threading.Event(), threading.Event()

    def live_process() -> None:
        with series_lock.holding(engine, live.name):
            holder_ready.set()
            release.wait(30)

    holder = threading.Thread(target=live_process)
    holder.start()
    try:
        assert holder_ready.wait(30)
        handed = staging.recover_areas(
            root, incoming, lambda name: series_lock.held_by_someone(engine, name))
    finally:
        release.set()
        holder.join()
    assert sorted(p.name for p in handed) == ["scp-before-areas", "scp-left"]
    assert (live / "scp-open" / "IM1.dcm").exists()  # the live one's series stays open
    assert (live / ".receiving" / "x.receiving").exists()  # and its spool untouched
    assert not gone.exists()
    engine.dispose()


def test_a_claimed_delivery_is_taken_in_by_one_process_at_a_time(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    with series_lock.holding(engine, "claimed/delivery-1", wait=False) as first:
        with series_lock.holding(engine, "claimed/delivery-1", wait=False) as second:
            assert first and not second
        with series_lock.holding(engine, "claimed/delivery-2", wait=False) as other:
            assert other
    with series_lock.holding(engine, "claimed/delivery-1", wait=False) as after:
        assert after  # let go when the first was done
    engine.dispose()
