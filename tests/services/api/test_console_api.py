"""What the console reads and does through the API: states in plain words, series
finished per interval, a held image's thumbnail and its drop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from relay_api.live import finished_per_interval
from relay_api.wording import failure_code, image_words, series_words
from relay_shared.db import session_scope
from relay_shared.models import Event, Image, Series, Stage, Status
from relay_shared.pixels.records import held_path
from relay_shared.runtime import Runtime
from tests.services.api.seed import Seeded, client, make_runtime, seed
from tests.shared.pixels.test_thumbnail import write_ct_slice


@pytest.mark.parametrize(("status", "stage", "error", "words"), [
    (Status.DONEPROCESSING, Stage.SEND, None, "De-identified, waiting to be sent"),
    (Status.FAILED, Stage.INGEST, "no file is DICOM", "Failed on arrival — cannot be retried"),
    (Status.FAILED, Stage.SEND, "x", "Failed while sending — will not retry by itself"),
    (Status.PROCESSING, Stage.DEID, "attempt 2 failed, will retry: OSError",
     "Processing — an attempt failed, will retry"),
    (Status.HELD, Stage.DEID, None, "Held by its project for a person to release or drop"),
])
def test_series_states_in_plain_words(status: Status, stage: Stage, error: str | None,
                                      words: str) -> None:
    assert series_words(status, stage, error) == words


@pytest.mark.parametrize("status", list(Status))
def test_every_status_has_its_own_words(status: Status) -> None:
    from relay_api.wording import _IMAGE_WORDS, _SERIES_WORDS, STATUS_WORDS

    assert status in STATUS_WORDS
    assert status in _SERIES_WORDS or status is Status.FAILED
    assert status in _IMAGE_WORDS


def test_image_states_and_failure_codes() -> None:
    assert image_words(Status.QUARANTINED, "held") == "Held for review of burned-in text"
    assert image_words(Status.QUARANTINED, None) == "Quarantined — not sent"
    assert failure_code(Status.QUARANTINED, None, "held") == "image.burned_in_text"
    assert failure_code(Status.FAILED, Stage.DEID) == "deid.failed"
    assert failure_code(Status.DONE, Stage.SEND) == "series.images_not_sent"


def _event(session: Session, series_id: int | None, kind: str, at: datetime) -> None:
    session.add(Event(series_id=series_id, kind=kind, at=at, service="sender", process="test"))


def test_series_finished_per_interval_by_status(rt: Runtime, seeded: Seeded) -> None:
    now = datetime(2026, 3, 1, 12, 7, tzinfo=UTC)
    with session_scope(rt.engine) as session:
        _event(session, seeded.done, "done", now - timedelta(minutes=2))  # 12:05, last slot
        _event(session, seeded.done, "done", now - timedelta(minutes=1))  # the same series
        _event(session, seeded.partial, "done", now - timedelta(minutes=3))
        _event(session, seeded.failed, "failed", now - timedelta(minutes=20))  # 11:47
        _event(session, seeded.failed, "retry", now - timedelta(minutes=19))  # not an end
        _event(session, seeded.quarantined, "quarantined", now - timedelta(hours=7))  # too old
    with Session(rt.engine) as session:
        intervals = finished_per_interval(session, timedelta(hours=1), timedelta(minutes=15),
                                          now=now)
    assert [i.start.strftime("%H:%M") for i in intervals] == ["11:15", "11:30", "11:45",
                                                              "12:00"]
    assert [i.finished for i in intervals] == [{}, {}, {"FAILED": 1}, {"DONE": 2}]


def _ended_around_noon(rt: Runtime, seeded: Seeded) -> list[dict[str, int]]:
    now = datetime(2026, 3, 1, 12, 7, tzinfo=UTC)
    with session_scope(rt.engine) as session:
        _event(session, seeded.done, "done", now - timedelta(minutes=2))
        _event(session, seeded.partial, "done", now - timedelta(minutes=3))
        _event(session, seeded.failed, "failed", now - timedelta(minutes=20))
    with Session(rt.engine) as session:
        return [i.finished for i in finished_per_interval(
            session, timedelta(hours=1), timedelta(minutes=15), now=now)]


@pytest.mark.postgres
def test_the_chart_and_the_date_filter_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    rt = make_runtime(tmp_path / "var", database_url=postgres_url)
    try:
        seeded = seed(rt.engine)
        assert _ended_around_noon(rt, seeded) == [{}, {}, {"FAILED": 1}, {"DONE": 2}]
        # The seed's DONE series arrived a day ago, the others now: a day's range each.
        today = datetime.now(UTC).date()
        yesterday = today - timedelta(days=1)
        api = client(rt)
        found = api.get(f"/api/v1/series?created_from={yesterday}&created_to={today}").json()
        assert [s["id"] for s in found["items"]] == [seeded.done]
        found = api.get(f"/api/v1/series?created_from={today}&status=FAILED").json()
        assert [(s["id"], s["status_text"]) for s in found["items"]] == [
            (seeded.failed, "Failed while sending — will not retry by itself")]
    finally:
        rt.engine.dispose()


def test_the_throughput_route_gives_each_interval_and_the_queues(rt: Runtime,
                                                                 seeded: Seeded) -> None:
    answer = client(rt).get("/api/v1/stats/throughput?hours=2&interval_minutes=30").json()
    assert answer["interval_seconds"] == 1800 and len(answer["intervals"]) == 4
    # The seed's two DONE series and its FAILED one ended just now.
    assert answer["intervals"][-1]["finished"] == {"DONE": 2, "FAILED": 1}
    assert answer["queues"] == {"relay.deid": 0, "relay.send": 0}
    assert client(rt).get("/api/v1/stats/throughput?interval_minutes=1").status_code == 422


def _held_image(rt: Runtime, seeded: Seeded, with_file: bool = True) -> int:
    with session_scope(rt.engine) as session:
        image = Image(series_id=seeded.done, sop_uid=f"2.25.9.{with_file}",
                      status=Status.QUARANTINED, pixel_gate="held")
        session.add(image)
        session.flush()
        assert image.id is not None
        if with_file:
            write_ct_slice(held_path(rt.store, seeded.done, image.id))
        return image.id


def test_an_admin_gets_a_png_of_a_held_image_and_the_read_is_kept(rt: Runtime,
                                                                  seeded: Seeded) -> None:
    image_id = _held_image(rt, seeded)
    answer = client(rt, "admin").get(f"/api/v1/images/{image_id}/thumbnail")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/png"
    assert answer.content.startswith(b"\x89PNG")
    assert answer.headers["cache-control"] == "no-store"
    with Session(rt.engine) as session:
        details = [e.detail or "" for e in session.exec(
            select(Event).where(Event.series_id == seeded.done, Event.kind == "read"))]
    assert any(f"thumbnail of held image {image_id} by token" in d for d in details)


def test_no_thumbnail_of_an_image_not_held_or_whose_file_is_gone(rt: Runtime,
                                                                 seeded: Seeded) -> None:
    admin = client(rt, "admin")
    with Session(rt.engine) as session:
        done_image = session.exec(select(Image).where(Image.series_id == seeded.done)).first()
        assert done_image is not None
    answer = admin.get(f"/api/v1/images/{done_image.id}/thumbnail")
    assert answer.status_code == 409 and "not held" in answer.json()["detail"]
    gone = _held_image(rt, seeded, with_file=False)
    answer = admin.get(f"/api/v1/images/{gone}/thumbnail")
    assert answer.status_code == 409 and "no longer there" in answer.json()["detail"]


def test_a_held_file_that_is_not_dicom_is_named_without_its_content(rt: Runtime,
                                                                    seeded: Seeded) -> None:
    image_id = _held_image(rt, seeded, with_file=False)
    path = held_path(rt.store, seeded.done, image_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"Doe^Jane 19610412 " * 40)
    answer = client(rt, "admin").get(f"/api/v1/images/{image_id}/thumbnail")
    assert answer.status_code == 409
    assert "cannot be read as DICOM" in answer.json()["detail"]
    assert "Doe" not in answer.text


def test_pixel_data_shorter_than_its_attributes_say_is_named_not_drawn(
        rt: Runtime, seeded: Seeded) -> None:
    from pydicom import dcmread

    image_id = _held_image(rt, seeded)
    path = held_path(rt.store, seeded.done, image_id)
    ds = dcmread(path)
    ds.PixelData = ds.PixelData[:10]  # far shorter than its rows and columns say
    ds.save_as(path)
    answer = client(rt, "admin").get(f"/api/v1/images/{image_id}/thumbnail")
    assert answer.status_code == 409
    assert answer.json()["detail"].startswith(f"image {image_id} has no thumbnail: ")


def test_dropping_a_held_image_removes_its_file_and_keeps_the_rest(rt: Runtime,
                                                                   seeded: Seeded) -> None:
    image_id = _held_image(rt, seeded)
    answer = client(rt, "admin").post(f"/api/v1/images/{image_id}/drop")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"image_id": image_id, "series_id": seeded.done,
                             "status": "QUARANTINED", "pixel_gate": "dropped"}
    assert not held_path(rt.store, seeded.done, image_id).exists()
    with Session(rt.engine) as session:
        image, series = session.get(Image, image_id), session.get(Series, seeded.done)
        assert image is not None and series is not None
        assert image.reason == "dropped after review of burned-in text"
        assert series.status is Status.DONE
        (event,) = session.exec(select(Event).where(Event.series_id == seeded.done,
                                                    Event.kind == "dropped"))
        assert f"image {image_id} dropped" in (event.detail or "")
    assert client(rt, "admin").post(f"/api/v1/images/{image_id}/drop").status_code == 409
    detail = client(rt).get(f"/api/v1/series/{seeded.done}").json()
    (dropped,) = [i for i in detail["images"] if i["id"] == image_id]
    assert dropped["status_text"] == "Dropped after review of burned-in text — never sent"
