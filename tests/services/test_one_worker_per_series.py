"""A series handed to two workers at once (RabbitMQ redelivering a message still in
hand, or the sweep requeueing a long series) is worked on by one of them: the other
waits, then finds the work done. On PostgreSQL, as the services run in production,
and with a real Orthanc as the destination."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from relay_deid.handlers import DeidContext, deidentify_series
from relay_deid.identifiers import LocalIdentifiers
from relay_sender.destinations import OutgoingSeries
from relay_sender.handlers import SendContext, send_series
from relay_sender.orthanc import OrthancDestination
from relay_shared.deid import DeidConfig, Identifiers
from relay_shared.models import Event, OutboxMessage, Series, Status
from relay_shared.runtime import Runtime
from tests.services.api.seed import make_runtime
from tests.services.sender.test_gcs import through_deid, through_ingest
from tests.shared.test_series_lock import waiting_for_lock
from tests.support.dicom_factory import Patient, SeriesSpec, write_series
from tests.support.services import Orthanc, wait_until

PATIENT = Patient("MRN-5150", "Okafor^Adaeze")


class FirstCallWaits:
    """Holds the first worker inside its work until the second worker either waits
    for the series or reaches the same work itself; counts how often it was reached."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self.calls = 0

    def enter(self) -> None:
        with self._lock:
            self.calls += 1
            first = self.calls == 1
        if first:
            wait_until(lambda: self.calls > 1 or waiting_for_lock(self._engine) > 0, 30,
                       "the second worker to arrive")


def in_two_workers(work: Callable[[], None]) -> None:
    failures: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # shown by the assertion below
            failures.append(exc)

    workers = [threading.Thread(target=run) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not failures, failures


def events(engine: Engine, series_id: int) -> list[str]:
    with Session(engine) as session:
        return [e.kind for e in session.exec(select(Event).where(
            Event.series_id == series_id).order_by(Event.id))]  # type: ignore[arg-type]


def runtime(tmp_path: Path, postgres_url: str) -> Runtime:
    return make_runtime(tmp_path / "var", database_url=postgres_url)


@pytest.mark.orthanc
def test_two_senders_given_one_series_send_it_once(tmp_path: Path, postgres_url: str,
                                                    orthanc: Orthanc) -> None:
    rt = runtime(tmp_path, postgres_url)
    write_series(SeriesSpec(PATIENT, instances=3), tmp_path / "series")
    series_id = through_deid(rt, tmp_path / "series")
    gate = FirstCallWaits(rt.engine)

    class Counted(OrthancDestination):
        def send(self, series: OutgoingSeries) -> None:
            gate.enter()
            super().send(series)

    ctx = SendContext(rt.engine, rt.store, [Counted(orthanc.url)])
    in_two_workers(lambda: send_series(ctx, series_id))

    assert gate.calls == 1
    assert len(orthanc.instances()) == 3
    assert events(rt.engine, series_id).count("sent") == 1
    with Session(rt.engine) as session:
        assert session.get(Series, series_id).status == Status.DONE  # type: ignore[union-attr]
    rt.engine.dispose()


def test_two_deid_workers_given_one_series_queue_it_for_sending_once(
        tmp_path: Path, postgres_url: str) -> None:
    rt = runtime(tmp_path, postgres_url)
    write_series(SeriesSpec(PATIENT, instances=3), tmp_path / "series")
    series_id = through_ingest(rt, tmp_path / "series")
    gate = FirstCallWaits(rt.engine)

    class Counted(LocalIdentifiers):
        def identifiers_for(self, patient_id: str, patient_name: str
                            ) -> tuple[Identifiers, str | None]:
            gate.enter()
            return super().identifiers_for(patient_id, patient_name)

    ctx = DeidContext(rt.engine, rt.store, rt.pseudonymizer,
                      DeidConfig.from_settings(rt.settings.deid_options, None),
                      rt.settings.send_queue, rt.vault, identifiers=Counted(rt.pseudonymizer))
    in_two_workers(lambda: deidentify_series(ctx, series_id))

    assert gate.calls == 1
    assert events(rt.engine, series_id).count("deidentified") == 1
    with Session(rt.engine) as session:
        queued = session.exec(select(OutboxMessage).where(
            OutboxMessage.queue == rt.settings.send_queue)).all()
        assert len(queued) == 1
        series = session.get(Series, series_id)
        assert series is not None and series.status == Status.DONEPROCESSING
        assert series.attempts == 1
    rt.engine.dispose()
