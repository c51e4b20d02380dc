"""The step inside deid: a series of ultrasound images where one is redacted by a
rule, one is held by the gate and one passes; the rest of the series goes on,
counts land in the audit, and an admin releases the held one through the API."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydicom import dcmread
from sqlmodel import Session, select

from relay_api.main import create_app
from relay_deid.handlers import DeidContext, deidentify_series
from relay_ingest.handlers import claim, ingest_claimed
from relay_shared.db import session_scope
from relay_shared.deid import DeidConfig
from relay_shared.models import Event, Image, OutboxMessage, Series, Status
from relay_shared.pixels import PixelPolicy, load_rules
from relay_shared.runtime import Runtime
from tests.services.api.seed import TOKENS, make_runtime
from tests.shared.pixels.drawing import UsSpec, us_image
from tests.shared.pixels.test_gate import IDENTIFYING, RULES


@pytest.fixture
def rt(tmp_path: Path) -> Runtime:
    runtime = make_runtime(tmp_path / "var")
    yield runtime  # type: ignore[misc]
    runtime.engine.dispose()


def _series(tmp_path: Path, rt: Runtime) -> int:
    folder = tmp_path / "src"
    folder.mkdir()
    study, series = "1.2.826.0.1.3680043.8.498.10", "1.2.826.0.1.3680043.8.498.11"
    for index, (model, texts) in enumerate([("SonoTest 1", IDENTIFYING),
                                            ("Other 9", IDENTIFYING),
                                            ("Other 9", {(4, 100): "LEFT KIDNEY"})]):
        ds = us_image(UsSpec(model=model, texts=texts))
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.InstanceNumber = study, series, index + 1
        ds.save_as(folder / f"IM{index}.dcm", enforce_file_format=True)
    incoming = tmp_path / "incoming" / "src"
    shutil.copytree(folder, incoming)
    (series_id,) = ingest_claimed(claim(incoming, rt.store), rt.engine, rt.store,
                                  rt.pseudonymizer.uid, "relay.deid")
    return series_id


def _deid(tmp_path: Path, rt: Runtime) -> int:
    rules = tmp_path / "site.yaml"
    rules.write_text(RULES)
    ctx = DeidContext(rt.engine, rt.store, rt.pseudonymizer,
                      DeidConfig.from_settings(["rtnLongModifDatesOpt"], None), "relay.send",
                      pixels=PixelPolicy(load_rules(rules)))
    series_id = _series(tmp_path, rt)
    deidentify_series(ctx, series_id)
    return series_id


def _images(rt: Runtime) -> list[Image]:
    with Session(rt.engine) as session:
        return list(session.exec(select(Image).order_by(Image.id)))  # type: ignore[arg-type]


def test_held_images_stay_back_and_the_rest_of_the_series_goes_on(tmp_path: Path,
                                                                  rt: Runtime) -> None:
    series_id = _deid(tmp_path, rt)
    redacted, held, passed = _images(rt)
    assert [i.status for i in (redacted, held, passed)] == [
        Status.DONEPROCESSING, Status.QUARANTINED, Status.DONEPROCESSING]
    assert (redacted.pixel_redacted, redacted.pixel_gate) == (True, "passed")
    assert held.pixel_gate == "held" and "burned-in text" in (held.reason or "")
    assert passed.pixel_gate == "passed" and passed.pixel_flag == "BurnedInAnnotation is YES"
    assert held.quarantine_path and Path(held.quarantine_path).exists()
    outputs = sorted(p.name for p in (rt.store.series_dir(series_id) / "deidentified").iterdir())
    assert outputs == [f"{redacted.id}.dcm", f"{passed.id}.dcm"]
    with Session(rt.engine) as session:
        series = session.get(Series, series_id)
        assert series is not None and series.status is Status.DONEPROCESSING
        assert series.audit and series.audit["pixels"] == {
            "flagged": 3, "redacted": 1, "passed": 2, "held": 1, "ocr_off": 0}
    out = dcmread(rt.store.deidentified(series_id, redacted.id or 0))
    assert out.BurnedInAnnotation == "NO" and out.PatientID != "MRN-4711"


def test_an_admin_releases_a_held_image_once_the_series_is_done(tmp_path: Path,
                                                               rt: Runtime) -> None:
    series_id = _deid(tmp_path, rt)
    held = _images(rt)[1]
    app = create_app(rt)
    reader = TestClient(app, headers={"Authorization": f"Bearer {TOKENS['reader']}"})
    admin = TestClient(app, headers={"Authorization": f"Bearer {TOKENS['admin']}"})
    url = f"/api/v1/images/{held.id}/release"
    assert reader.post(url).status_code == 403
    assert admin.post(url).status_code == 409  # the series is still on its way
    with session_scope(rt.engine) as session:
        series = session.get(Series, series_id)
        assert series is not None
        series.status = Status.DONE
        for message in session.exec(select(OutboxMessage)):
            session.delete(message)
    answer = admin.post(url)
    assert answer.status_code == 200, answer.text
    assert answer.json()["queued_for_send"] is True
    assert rt.store.deidentified(series_id, held.id or 0).exists()
    with Session(rt.engine) as session:
        image = session.get(Image, held.id)
        assert image is not None and image.status is Status.DONEPROCESSING
        assert image.pixel_gate == "released"
        events = session.exec(select(Event).where(Event.series_id == series_id))
        (released,) = [e.detail or "" for e in events if e.kind == "released"]
        assert "by token unnamed-admin-" in released and "from testclient" in released
    assert admin.post(url).status_code == 409  # not held any more
