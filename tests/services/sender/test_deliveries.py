"""Each destination's result is kept per image, and a retry sends an image only to the
destinations that have not confirmed it: a real Orthanc that is down on the first
attempt and up on the second, beside an outbox folder that took the series at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from relay_sender.destinations import DestinationError, FolderDestination
from relay_sender.handlers import SendContext, send_series
from relay_sender.orthanc import OrthancDestination
from relay_shared.db import session_scope
from relay_shared.models import Delivery, DeliveryState, Image, Series, Status
from tests.services.api.seed import client, make_runtime
from tests.services.sender.test_gcs import through_deid
from tests.support.dicom_factory import Patient, SeriesSpec, write_series
from tests.support.services import Orthanc, free_port

PATIENT = Patient("MRN-7007", "Hamilton^Margaret")


def deliveries(engine: object, series_id: int) -> dict[tuple[int, str], Delivery]:
    with Session(engine) as session:  # type: ignore[arg-type]
        return {(d.image_id, d.destination): d for d in session.exec(
            select(Delivery).where(Delivery.series_id == series_id))}


def retry_send(engine: object, series_id: int) -> None:
    """What POST /series/{id}/retry does for a series that failed at the send stage."""
    with session_scope(engine) as session:  # type: ignore[arg-type]
        series = session.get(Series, series_id)
        assert series is not None
        series.status = Status.DONEPROCESSING


@pytest.mark.orthanc
def test_a_retry_goes_only_where_images_are_not_confirmed(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path / "var")
    write_series(SeriesSpec(PATIENT, instances=3), tmp_path / "series")
    series_id = through_deid(rt, tmp_path / "series")
    outbox = FolderDestination(tmp_path / "outbox")
    down = OrthancDestination(f"http://127.0.0.1:{free_port()}", timeout=3)

    with pytest.raises(DestinationError):
        send_series(SendContext(rt.engine, rt.store, [outbox, down]), series_id)
    first = deliveries(rt.engine, series_id)
    with Session(rt.engine) as session:
        image_ids = [i.id for i in session.exec(select(Image).where(Image.series_id == series_id))]
    assert len(image_ids) == 3
    for image_id in image_ids:
        assert first[(image_id, "outbox")].state == DeliveryState.CONFIRMED
        failed = first[(image_id, "orthanc")]
        assert failed.state == DeliveryState.FAILED and failed.error and failed.attempts == 1
    copies = {p: p.stat().st_ino for p in (tmp_path / "outbox").rglob("*.dcm")}
    assert len(copies) == 3

    orthanc = Orthanc(tmp_path / "orthanc").start()
    try:
        retry_send(rt.engine, series_id)
        send_series(SendContext(rt.engine, rt.store,
                                [outbox, OrthancDestination(orthanc.url)]), series_id)
        assert len(orthanc.instances()) == 3
    finally:
        orthanc.stop()
    second = deliveries(rt.engine, series_id)
    for image_id in image_ids:
        assert second[(image_id, "outbox")].attempts == 1  # not sent again
        confirmed = second[(image_id, "orthanc")]
        assert confirmed.state == DeliveryState.CONFIRMED and confirmed.error is None
        assert confirmed.attempts == 2 and confirmed.confirmed_at is not None
    assert {p: p.stat().st_ino for p in (tmp_path / "outbox").rglob("*.dcm")} == copies
    with Session(rt.engine) as session:
        assert session.get(Series, series_id).status == Status.DONE  # type: ignore[union-attr]

    detail = client(rt).get(f"/api/v1/series/{series_id}").json()
    shown = {d["destination"]: d for d in detail["images"][0]["deliveries"]}
    assert shown["orthanc"]["state"] == "CONFIRMED" and shown["orthanc"]["attempts"] == 2
    assert shown["outbox"]["state"] == "CONFIRMED"
