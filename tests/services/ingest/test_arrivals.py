"""Parts of one series at several SCP processes: closed only once quiet everywhere, and
de-identification started by the last part taken in."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, update

from relay_ingest.arrivals import HEARTBEAT_TIMEOUT, Arrivals, OpenPart, taken_in
from relay_shared.db import session_scope
from relay_shared.models import StagedDelivery, utcnow
from tests.services.api.seed import make_runtime

SERIES = "1.2.826.0.1.3680043.8.498.1"


def test_a_series_closes_once_quiet_at_every_live_replica(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path / "var")
    here = Arrivals(rt.engine, rt.pseudonymizer.uid, stable_age=0.5)
    there = Arrivals(rt.engine, rt.pseudonymizer.uid, stable_age=0.5)
    here.note([OpenPart("scp-a", SERIES, arrived=True)])
    time.sleep(0.6)
    assert here.quiet([SERIES]) == {SERIES}
    there.note([OpenPart("scp-b", SERIES, arrived=True)])  # the other replica receives now
    assert here.quiet([SERIES]) == set()
    time.sleep(0.6)
    assert here.quiet([SERIES]) == {SERIES}
    there.note([OpenPart("scp-b", SERIES, arrived=True)])
    # A replica whose heartbeat stopped (it died) no longer holds the series open.
    with session_scope(rt.engine) as session:
        session.execute(update(StagedDelivery).values(
            heartbeat_at=utcnow() - HEARTBEAT_TIMEOUT - timedelta(seconds=1)))
    assert here.quiet([SERIES]) == {SERIES}


def test_the_last_part_taken_in_starts_the_series(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path / "var")
    arrivals = Arrivals(rt.engine, rt.pseudonymizer.uid, stable_age=0.5)
    arrivals.note([OpenPart("scp-a", SERIES, arrived=True), OpenPart("scp-b", SERIES, True)])
    arrivals.handed_over("scp-a")
    arrivals.handed_over("scp-b")
    key = rt.pseudonymizer.uid(SERIES)
    with Session(rt.engine) as session:
        assert not taken_in(session, key, "scp-a")  # scp-b is on its way
        session.commit()
    with Session(rt.engine) as session:
        assert taken_in(session, key, "scp-b")
        session.commit()
    with Session(rt.engine) as session:
        assert taken_in(session, key, None)  # a later folder delivery waits for nothing
