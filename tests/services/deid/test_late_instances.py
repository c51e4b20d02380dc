"""Instances of a series that ingest records while deid is working on it (a late
instance over DICOM, a second part from another SCP replica) are not left behind:
the series waits for them, then is sent whole, once."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

import relay_deid.handlers as deid_handlers
from relay_shared.models import Image, OutboxMessage, Series, Status
from tests.services.api.seed import make_runtime
from tests.services.sender.test_gcs import through_deid, through_ingest
from tests.support.dicom_factory import Patient, SeriesSpec, write_series


def test_images_recorded_during_deid_are_deidentified_before_the_series_is_sent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = make_runtime(tmp_path / "var")
    spec = SeriesSpec(Patient("MRN-7007", "Noether^Emmy"), instances=5)
    files = write_series(spec, tmp_path / "all")
    first, late = tmp_path / "first", tmp_path / "late"
    for folder, part in ((first, files[:3]), (late, files[3:])):
        folder.mkdir()
        for path in part:
            path.rename(folder / path.name)
    leak_check = deid_handlers._leak_check

    def ingest_arrives_meanwhile(*args, **kwargs):  # type: ignore[no-untyped-def]
        through_ingest(rt, late)  # while deid still holds the series
        return leak_check(*args, **kwargs)

    monkeypatch.setattr(deid_handlers, "_leak_check", ingest_arrives_meanwhile)
    series_id = through_deid(rt, first)
    monkeypatch.setattr(deid_handlers, "_leak_check", leak_check)

    def state() -> tuple[Status, list[Status], int]:
        with Session(rt.engine) as session:
            series = session.get(Series, series_id)
            assert series is not None
            images = sorted(i.status for i in session.exec(
                select(Image).where(Image.series_id == series_id)))
            to_send = sum(1 for m in session.exec(select(OutboxMessage))
                          if m.queue == rt.settings.send_queue)
        return series.status, images, to_send

    # The late images wait for their turn; the series is not sent without them.
    assert state() == (Status.NEW, [Status.DONEPROCESSING] * 3 + [Status.NEW] * 2, 0)
    deid_handlers.deidentify_series(_context(rt), series_id)
    assert state() == (Status.DONEPROCESSING, [Status.DONEPROCESSING] * 5, 1)


def _context(rt):  # type: ignore[no-untyped-def]
    from relay_shared.deid import DeidConfig

    return deid_handlers.DeidContext(rt.engine, rt.store, rt.pseudonymizer,
                                     DeidConfig.from_settings(rt.settings.deid_options, None),
                                     rt.settings.send_queue, rt.vault)
