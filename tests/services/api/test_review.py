"""The review gate through the API on a real database and real de-identified files:
who may decide, what each role is shown, and that a decision is made once."""

from __future__ import annotations

import asyncio
import io
import re
import threading
import time
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlmodel import Session, col, select

from relay_shared import series_lock, series_state
from relay_shared.db import make_engine, session_scope
from relay_shared.models import Event, Image, OutboxMessage, ReviewOriginal, Series, Status
from relay_shared.review import ReviewMode
from relay_shared.runtime import Runtime
from tests.services.api.review_support import ADA, GRACE, ct_series, series_under_review
from tests.services.api.seed import client, make_runtime

ORIGINALS = ("Lovelace", "MRN-1001", "ACC-7001", "Saint Elsewhere")


def _series(rt: Runtime, series_id: int) -> Series:
    with Session(rt.engine) as session:
        series = session.get(Series, series_id)
        assert series is not None
        return series


def _events(rt: Runtime, series_id: int, kind: str) -> list[Event]:
    with Session(rt.engine) as session:
        return list(session.exec(select(Event).where(Event.series_id == series_id,
                                                     Event.kind == kind)))


def _queued_for_send(rt: Runtime) -> int:
    depths = asyncio.run(rt.bus.queue_depths())
    with Session(rt.engine) as session:
        rows = len(list(session.exec(select(OutboxMessage).where(
            OutboxMessage.queue == rt.settings.send_queue))))
    return depths.get(rt.settings.send_queue, 0) + rows


def test_a_series_of_a_reviewed_project_waits_unqueued(rt: Runtime, tmp_path: Path) -> None:
    series_id = series_under_review(rt, tmp_path, ct_series())
    series = _series(rt, series_id)
    assert series.status is Status.REVIEW
    assert _queued_for_send(rt) == 0
    (waiting,) = _events(rt, series_id, "review")
    assert waiting.detail == "its project reviews all series"
    with Session(rt.engine) as session:
        sealed = list(session.exec(select(ReviewOriginal)))
    assert len(sealed) == 3
    assert not any(o in row.sealed for row in sealed for o in ORIGINALS)  # encrypted
    listed = client(rt, "reviewer").get("/api/v1/review").json()
    assert [s["id"] for s in listed] == [series_id]
    metrics = client(rt, None).get("/metrics").text
    assert 'relay_series_awaiting_review{project="default"} 1.0' in metrics


def test_a_series_outside_the_sample_goes_straight_on(rt: Runtime, tmp_path: Path) -> None:
    # one_in is 20: a series drawn out of the sample is queued as without review.
    ids = [series_under_review(rt, tmp_path, ct_series(instances=1), ReviewMode.SAMPLE)
           for _ in range(6)]
    statuses = {_series(rt, i).status for i in ids}
    assert Status.DONEPROCESSING in statuses
    assert statuses <= {Status.DONEPROCESSING, Status.REVIEW}


def test_a_reader_or_an_operator_cannot_decide(rt: Runtime, tmp_path: Path) -> None:
    series_id = series_under_review(rt, tmp_path, ct_series())
    for role in ("reader", "operator"):
        for action, body in (("approve", None), ("reject", {"reason": "text on frame 2"})):
            answer = client(rt, role).post(f"/api/v1/review/{series_id}/{action}", json=body)
            assert answer.status_code == 403
            assert answer.json()["detail"] == "this needs the reviewer role"
        assert client(rt, role).get(f"/api/v1/review/{series_id}").status_code == 403
    assert _series(rt, series_id).status is Status.REVIEW


def test_a_reviewer_sees_what_leaves_and_never_what_was(rt: Runtime, tmp_path: Path) -> None:
    series_id = series_under_review(rt, tmp_path, ct_series())
    detail = client(rt, "reviewer").get(f"/api/v1/review/{series_id}").json()
    assert [i["frames"] for i in detail["images"]] == [1, 1, 1]
    image_id = detail["images"][0]["id"]
    answer = client(rt, "reviewer").get(
        f"/api/v1/review/{series_id}/images/{image_id}/attributes")
    assert answer.status_code == 200
    assert not any(o in answer.text for o in ORIGINALS)
    rows = {r["path"]: r for r in answer.json()}
    assert rows["(0010,0010)"]["action"] == "replaced"
    assert rows["(0010,0010)"]["value"].startswith("PSEUDONYM^")
    assert rows["(0008,0020)"]["action"] == "date shifted"
    assert rows["(0008,0060)"] == {"path": "(0008,0060)", "keyword": "Modality", "vr": "CS",
                                   "value": "CT", "action": "kept", "before": None}
    assert "(0010,1000)" not in rows and not any(r["action"] == "removed" for r in rows.values())
    assert not _events(rt, series_id, "read")  # nothing identifying was read


def test_an_admin_also_sees_each_value_before_and_the_read_is_audited(
        rt: Runtime, tmp_path: Path) -> None:
    series_id = series_under_review(rt, tmp_path, ct_series())
    image_id = client(rt, "admin").get(f"/api/v1/review/{series_id}").json()["images"][0]["id"]
    rows = {r["path"]: r for r in client(rt, "admin").get(
        f"/api/v1/review/{series_id}/images/{image_id}/attributes").json()}
    assert rows["(0010,0010)"]["before"] == "Lovelace^Ada"
    assert rows["(0010,0020)"]["before"] == "MRN-1001"
    assert rows["(0008,0080)"]["action"] == "removed"  # InstitutionName
    assert rows["(0008,0080)"]["before"] == "Saint Elsewhere Hospital"
    (read,) = _events(rt, series_id, "read")
    assert read.detail is not None and f"image {image_id}" in read.detail
    assert "by token" in read.detail and "(admin)" in read.detail


def test_each_frame_is_a_picture_of_the_deidentified_file(rt: Runtime, tmp_path: Path) -> None:
    series_id = series_under_review(rt, tmp_path, ct_series())
    image_id = client(rt, "reviewer").get(f"/api/v1/review/{series_id}").json()["images"][0]["id"]
    answer = client(rt, "reviewer").get(
        f"/api/v1/review/{series_id}/images/{image_id}/frames/0.png")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert PILImage.open(io.BytesIO(answer.content)).size == (40, 48)
    missing = client(rt, "reviewer").get(
        f"/api/v1/review/{series_id}/images/{image_id}/frames/1.png")
    assert missing.status_code == 404 and "not among the 1 frame(s)" in missing.json()["detail"]
    # Thumbnails come from the de-identified file only: without it there is no picture.
    rt.store.deidentified(series_id, image_id).unlink()
    gone = client(rt, "reviewer").get(f"/api/v1/review/{series_id}/images/{image_id}/frames/0.png")
    assert gone.status_code == 404


def test_approve_queues_once_however_many_reviewers_click(rt: Runtime, tmp_path: Path) -> None:
    series_id = series_under_review(rt, tmp_path, ct_series())
    start = threading.Barrier(4)
    answers: list[int] = []

    def click(role: str) -> None:
        api = client(rt, role)  # each its own app, as two api replicas would be
        start.wait()
        answers.append(api.post(f"/api/v1/review/{series_id}/approve").status_code)

    threads = [threading.Thread(target=click, args=(role,))
               for role in ("reviewer", "reviewer", "admin", "reviewer")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200, 409, 409, 409]
    assert _series(rt, series_id).status is Status.DONEPROCESSING
    assert _queued_for_send(rt) == 1
    (approved,) = _events(rt, series_id, "approved")
    assert approved.detail is not None and "by token" in approved.detail
    again = client(rt, "reviewer").post(f"/api/v1/review/{series_id}/approve")
    assert again.status_code == 409 and "it was approved at" in again.json()["detail"]
    with Session(rt.engine) as session:  # the sealed before-values go with the decision
        assert not list(session.exec(select(ReviewOriginal)))


def test_reject_quarantines_with_the_reason(rt: Runtime, tmp_path: Path) -> None:
    series_id = series_under_review(rt, tmp_path, ct_series(GRACE))
    empty = client(rt, "reviewer").post(f"/api/v1/review/{series_id}/reject",
                                        json={"reason": " "})
    assert empty.status_code == 422
    answer = client(rt, "reviewer").post(f"/api/v1/review/{series_id}/reject",
                                         json={"reason": "name burned into frame 1"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"series_id": series_id, "status": "QUARANTINED",
                             "decision": "rejected", "queued_for_send": False}
    series = _series(rt, series_id)
    assert series.error == "rejected in review: name burned into frame 1"
    assert _queued_for_send(rt) == 0
    with Session(rt.engine) as session:
        images = list(session.exec(select(Image).where(Image.series_id == series_id)))
    assert {i.status for i in images} == {Status.QUARANTINED}
    assert all(Path(i.quarantine_path or "").is_file() for i in images)
    assert not list((rt.store.series_dir(series_id) / "deidentified").glob("*"))
    (rejected,) = _events(rt, series_id, "rejected")
    assert rejected.detail is not None and rejected.detail.startswith("name burned into frame 1")
    assert client(rt, "reviewer").post(
        f"/api/v1/review/{series_id}/approve").status_code == 409


def test_reasons_are_bounded(rt: Runtime, tmp_path: Path) -> None:
    series_id = series_under_review(rt, tmp_path, ct_series(ADA, instances=1))
    answer = client(rt, "reviewer").post(f"/api/v1/review/{series_id}/reject",
                                         json={"reason": "x" * 501})
    assert answer.status_code == 422
    with Session(rt.engine) as session:
        assert session.exec(select(Series.status).where(col(Series.id) == series_id)).one() \
            is Status.REVIEW


@pytest.mark.postgres
def test_a_decision_under_way_on_another_replica_is_waited_for(tmp_path: Path,
                                                                postgres_url: str) -> None:
    """PostgreSQL, where api replicas are processes apart: the second decision waits for
    the first to commit, then finds the series decided."""
    rt = make_runtime(tmp_path / "var", database_url=postgres_url)
    series_id = series_under_review(rt, tmp_path, ct_series(instances=1))
    replica = make_engine(postgres_url)  # another api process's connections
    deciding = threading.Event()

    def other_replica_approves() -> None:
        with series_lock.exclusive(replica, series_id), session_scope(replica) as session:
            series = session.get(Series, series_id, with_for_update=True)
            assert series is not None
            series_state.approved(session, series, "by token ann (reviewer) from 10.0.0.2")
            session.flush()
            deciding.set()
            time.sleep(1.5)  # still deciding when the second click arrives

    other = threading.Thread(target=other_replica_approves)
    other.start()
    assert deciding.wait(10)
    answer = client(rt, "reviewer").post(f"/api/v1/review/{series_id}/approve")
    other.join()
    assert answer.status_code == 409, answer.text
    assert len(_events(rt, series_id, "approved")) == 1
    assert _queued_for_send(rt) == 0  # this replica queued nothing; the other one's caller does
    replica.dispose()
    rt.engine.dispose()


def test_the_review_pages_are_public_shells_that_run_only_the_apis_scripts(rt: Runtime) -> None:
    for path in ("/review", "/review/pixel-rules"):
        page = client(rt, None).get(path)
        assert page.status_code == 200
        scripts = re.findall(r"<script[^>]*>", page.text)
        assert scripts and all('type="module" src="/dashboard/static/' in s for s in scripts)
        assert 'data-oidc="off"' in page.text  # no sign-on configured, none offered
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "img-src 'self' blob:;" in policy
    api = client(rt, "reviewer").get("/api/v1/review")
    assert api.headers["content-security-policy"].startswith("default-src 'none'")
