"""Webhooks end to end on loopback: status changes committed by the stages become
signed notifications that a real HTTP receiver gets in order; a receiver that is down
gets them once it is up, even after a restart of the relay; and what has not arrived
is visible in the API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from relay_shared import series_state
from relay_shared.db import session_scope
from relay_shared.models import (
    Collection,
    CollectionRow,
    Image,
    Notification,
    RowState,
    Series,
    Status,
    Study,
)
from relay_shared.notify import delivery
from relay_shared.runtime import Runtime
from tests.services.api.seed import client, make_runtime
from tests.support.services import free_port
from tests.support.webhook_receiver import Receiver

SECRET = b"lab-secret-for-tests"
ORIGINAL_NAME = "DOE^JANE"  # what a source file would hold; it must never be sent


def runtime(data_dir: Path, port: int, **overrides: object) -> Runtime:
    return make_runtime(
        data_dir, webhooks=[{"name": "lab", "url": f"http://127.0.0.1:{port}/hook"}],
        webhook_secret="shared-secret-not-this-hooks", webhook_secrets={"lab": SECRET.decode()},
        webhook_retry_base_delay=0.05, webhook_max_attempts=3, **overrides)


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def rt(tmp_path: Path, port: int) -> Iterator[Runtime]:
    runtime_ = runtime(tmp_path / "var", port)
    yield runtime_
    runtime_.engine.dispose()


@pytest.fixture
def receiver(port: int) -> Iterator[Receiver]:
    receiver_ = Receiver(port, SECRET)
    yield receiver_
    receiver_.stop()


def new_series(rt: Runtime, uid: str, images: int = 2) -> int:
    with session_scope(rt.engine) as session:
        study = Study(study_uid=f"2.25.{uid}0", patient_pseudonym="PSEUDO-AAAA")
        session.add(study)
        session.flush()
        series = Series(series_uid=f"2.25.{uid}", study_id=study.id, trace_id="t",
                        modality="CT")
        session.add(series)
        session.flush()
        assert series.id is not None
        for n in range(images):
            session.add(Image(series_id=series.id, sop_uid=f"2.25.{uid}.{n}"))
        return series.id


def set_status(rt: Runtime, series_id: int, status: Status) -> None:
    with session_scope(rt.engine) as session:
        series = session.get(Series, series_id)
        assert series is not None
        series.status = status
        for image in session.exec(select(Image).where(Image.series_id == series_id)):
            image.status = status


def deliver(rt: Runtime) -> int:
    async def once() -> int:
        async with delivery.http_client(rt.settings) as http:
            return await delivery.deliver_due(rt.engine, rt.settings, http)
    return asyncio.run(once())


def notifications(rt: Runtime) -> list[Notification]:
    with Session(rt.engine) as session:
        return list(session.exec(select(Notification).order_by(Notification.id)))


def test_each_status_change_arrives_signed_and_in_order(rt, receiver):
    assert_changes_arrive_in_order(rt, receiver)


@pytest.mark.postgres
def test_each_status_change_arrives_in_order_on_postgresql(tmp_path, port, receiver,
                                                           postgres_url):
    rt = runtime(tmp_path / "var", port, database_url=postgres_url)
    try:
        assert_changes_arrive_in_order(rt, receiver)
    finally:
        rt.engine.dispose()


def assert_changes_arrive_in_order(rt: Runtime, receiver: Receiver) -> None:
    receiver.start()
    first, second = new_series(rt, "1"), new_series(rt, "2")
    set_status(rt, first, Status.PROCESSING)  # not an event anyone asked for
    set_status(rt, first, Status.FAILED)
    set_status(rt, second, Status.QUARANTINED)
    set_status(rt, first, Status.DONE)  # retried, then done
    assert deliver(rt) == 3
    got = [(a["event"], a["body"]["series"]["id"]) for a in receiver.accepted]
    assert got == [("series.failed", first), ("series.quarantined", second),
                   ("series.done", first)]
    done = receiver.accepted[-1]["body"]
    assert done["series"] == {"id": first, "status": "DONE", "previous_status": "FAILED",
                              "stage": "deid", "series_uid": "2.25.1",
                              "study_uid": "2.25.10", "patient_pseudonym": "PSEUDO-AAAA"}
    assert done["images"] == {"DONE": 2} and done["project"] == "default"
    assert [n.state for n in notifications(rt)] == ["DELIVERED"] * 3
    assert deliver(rt) == 0  # nothing twice


def test_a_change_rolled_back_notifies_nobody(rt, receiver):
    receiver.start()
    series_id = new_series(rt, "3")
    with pytest.raises(RuntimeError), session_scope(rt.engine) as session:
        series = session.get(Series, series_id)
        assert series is not None
        series.status = Status.FAILED
        session.flush()
        raise RuntimeError("the stage crashed before its commit")
    assert notifications(rt) == []


def test_a_receiver_down_then_up_gets_everything_after_a_restart(tmp_path, port, receiver):
    rt = runtime(tmp_path / "var", port)
    ids = [new_series(rt, str(n)) for n in range(4, 7)]
    for series_id in ids:
        set_status(rt, series_id, Status.DONE)
    assert deliver(rt) == 0  # nobody listens on the port yet
    waiting = client(rt, "operator").get("/api/v1/notifications?state=PENDING").json()
    assert waiting["total"] == 3
    assert waiting["items"][0]["attempts"] == 1
    assert waiting["items"][0]["last_error"] == "connection failed"
    assert waiting["items"][1]["attempts"] == 0  # the first holds the hook's queue
    assert client(rt, "reader").get("/api/v1/notifications").status_code == 403
    rt.engine.dispose()

    receiver.start()
    restarted = runtime(tmp_path / "var", port)  # a new process over the same database
    asyncio.run(asyncio.sleep(0.1))  # past the first retry's delay
    assert deliver(restarted) == 3
    assert [a["body"]["series"]["id"] for a in receiver.accepted] == ids
    restarted.engine.dispose()


def test_a_receiver_that_keeps_failing_is_given_up_on_and_can_be_retried(rt, receiver):
    receiver.answer = 500
    receiver.start()
    set_status(rt, new_series(rt, "7"), Status.FAILED)
    for _ in range(3):
        deliver(rt)
        asyncio.run(asyncio.sleep(0.25))
    [row] = notifications(rt)
    assert (row.state, row.attempts, row.last_error) == ("GAVE_UP", 3, "HTTP 500")
    assert receiver.refused == 3
    api = client(rt, "operator")
    assert api.get("/api/v1/notifications?state=GAVE_UP").json()["total"] == 1
    receiver.answer = 204
    assert api.post(f"/api/v1/notifications/{row.id}/retry").json()["state"] == "PENDING"
    assert deliver(rt) == 1
    assert api.post(f"/api/v1/notifications/{row.id}/retry").status_code == 409


def test_a_wrong_secret_is_refused_by_the_receiver(rt, port):
    impostor = Receiver(port, b"another-secret").start()
    try:
        set_status(rt, new_series(rt, "8"), Status.DONE)
        assert deliver(rt) == 0
        assert impostor.refused == 1 and impostor.accepted == []
    finally:
        impostor.stop()


def test_a_finished_collection_is_one_notification(rt, receiver):
    receiver.start()
    with session_scope(rt.engine) as session:
        collection = Collection(name="worklist")
        session.add(collection)
        session.flush()
        assert collection.id is not None
        collection_id = collection.id
        for n in range(3):
            session.add(CollectionRow(collection_id=collection_id, row_number=n,
                                      query_key=f"k{n}"))
    for n, state in enumerate((RowState.DONE, RowState.NOT_FOUND, RowState.FAILED)):
        with session_scope(rt.engine) as session:
            row = session.exec(select(CollectionRow).where(
                CollectionRow.row_number == n)).one()
            row.state = state.value
    assert deliver(rt) == 1
    [sent] = receiver.accepted
    assert sent["body"]["collection"] == {
        "id": collection_id, "rows": 3,
        "rows_by_state": {"DONE": 1, "NOT_FOUND": 1, "FAILED": 1}}


def test_bodies_hold_ids_pseudonyms_and_counts_only(rt, receiver):
    receiver.start()
    series_id = new_series(rt, "9")
    set_status(rt, series_id, Status.DONE)
    deliver(rt)
    body = receiver.accepted[0]["body"]
    assert set(body) == {"event", "event_id", "occurred_at", "project", "series", "images"}
    assert ORIGINAL_NAME not in json.dumps(body)


def test_delivered_notifications_are_pruned_after_their_time_undelivered_stay(rt, receiver):
    receiver.start()
    set_status(rt, new_series(rt, "10"), Status.DONE)
    deliver(rt)
    receiver.stop()
    set_status(rt, new_series(rt, "11"), Status.DONE)
    deliver(rt)  # the receiver is gone: this one stays PENDING
    assert delivery.prune_delivered(rt.engine, timedelta(days=1)) == 0
    assert delivery.prune_delivered(rt.engine, timedelta(0)) == 1
    assert [n.state for n in notifications(rt)] == ["PENDING"]


def test_a_worklist_collected_before_finishes_at_once_and_says_so(rt, receiver):
    from relay_ingest.worklist import Query, create_collection

    receiver.start()
    first = create_collection(rt.engine, rt.vault, "first",
                              [Query(accession="ACC-HOOK-1")])
    with session_scope(rt.engine) as session:
        row = session.exec(select(CollectionRow).where(
            CollectionRow.collection_id == first)).one()
        row.state = RowState.DONE.value
    again = create_collection(rt.engine, rt.vault, "again",
                              [Query(accession="ACC-HOOK-1")])
    assert deliver(rt) == 2
    assert [a["body"]["collection"]["id"] for a in receiver.accepted] == [first, again]
    assert "ACC-HOOK-1" not in json.dumps([a["body"] for a in receiver.accepted])


def test_a_series_waiting_for_review_is_told(rt, receiver):
    receiver.start()
    series_id = new_series(rt, "9")
    with session_scope(rt.engine) as session:
        series = session.get(Series, series_id)
        assert series is not None
        series_state.awaiting_review(session, series, "its project reviews all series")
    assert deliver(rt) == 1
    (told,) = receiver.accepted
    assert told["event"] == "series.review"
    assert told["body"]["series"]["status"] == "REVIEW"
