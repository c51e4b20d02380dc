"""deid with a real HTTP identifiers service on loopback: one call per patient, and
a series that waits (is neither failed nor sent) while the service is down."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from sqlmodel import Session, select

from relay_deid.handlers import deidentify_series
from relay_deid.identifiers import IdentifiersUnavailable, RemoteIdentifiers
from relay_shared.models import Series, SeriesIdentifiers, Status
from tests.services.deid.test_handlers import _context, _ingest
from tests.support.dicom_factory import Patient, SeriesSpec, write_series
from tests.support.identifiers_service import IdentifiersService, identifiers_service
from tests.support.services import free_port


@pytest.fixture
def service() -> Iterator[IdentifiersService]:
    with identifiers_service() as running:
        yield running


def test_the_service_names_the_patient_once_per_patient(tmp_path: Path,
                                                         service: IdentifiersService) -> None:
    url, calls = service.url, service.calls
    ctx = _context(tmp_path)
    ctx = type(ctx)(**{**ctx.__dict__, "identifiers": RemoteIdentifiers(url, "k1")})
    patient = Patient("mrn-77 ", "Doe^Jane^^")
    for n in range(2):
        write_series(SeriesSpec(patient, instances=2), tmp_path / f"src{n}")
        series_id = _ingest(ctx, tmp_path / f"src{n}")
        deidentify_series(ctx, series_id)
        output = next((ctx.store.series_dir(series_id) / "deidentified").iterdir())
        assert dcmread(output).PatientID == "STUDY-0001"
    assert calls == [{"patient_id": "MRN-77", "patient_name": "DOE^JANE", "key_id": "k1"}]
    with Session(ctx.engine) as session:
        rows = list(session.exec(select(SeriesIdentifiers)))
    assert {r.source for r in rows} == {"service"}
    assert all(r.response_sha256 and len(r.response_sha256) == 64 for r in rows)


def test_a_series_waits_while_the_service_is_down(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/identifiers"  # nothing listens
    ctx = _context(tmp_path)
    ctx = type(ctx)(**{**ctx.__dict__,
                       "identifiers": RemoteIdentifiers(url, "k1", timeout=1, attempts=1)})
    write_series(SeriesSpec(Patient("MRN-8", "Doe^John"), instances=2), tmp_path / "src")
    series_id = _ingest(ctx, tmp_path / "src")
    started = time.monotonic()
    with pytest.raises(IdentifiersUnavailable, match="unreachable"):
        deidentify_series(ctx, series_id)
    assert time.monotonic() - started < 10
    with Session(ctx.engine) as session:
        series = session.get(Series, series_id)
        assert series is not None and series.status is Status.PROCESSING  # waiting, not FAILED
    assert not (ctx.store.series_dir(series_id) / "deidentified").exists()
