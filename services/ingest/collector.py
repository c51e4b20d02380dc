"""Collect a worklist from a PACS: find each row's study, retrieve it, follow it to DONE.

A worklist (``worklist.py``) is a CSV of accession numbers, or of patient ids with
a date range. Each row is a CollectionRow: QUEUED, then NOT_FOUND, AMBIGUOUS (an accession
number that names more than one study), or FOUND and RETRIEVING, then DONE once
every series the PACS listed for it is DONE in the relay, or FAILED with its
reason. Retrieved instances arrive on the relay's SCP (C-MOVE)
or straight into incoming (C-GET) and take the ordinary path from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from pydicom.dataset import Dataset
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from relay_ingest.origin import OriginSeal
from relay_ingest.pacs import Pacs, PacsError, RateLimit
from relay_ingest.worklist import Query
from relay_shared import dicomfiles, tlsconfig
from relay_shared.db import session_scope
from relay_shared.models import CollectionRow, RowState, Series, Status, utcnow
from relay_shared.runtime import Runtime
from relay_shared.series_state import GIVEN_UP
from relay_shared.settings import Settings
from relay_shared.vault import IdentifierVault

log = logging.getLogger(__name__)


def _update(engine: Engine, row_id: int, **values: object) -> None:
    with session_scope(engine) as session:
        row = session.get(CollectionRow, row_id)
        assert row is not None
        for key, value in values.items():
            setattr(row, key, value.value if isinstance(value, RowState) else value)
        row.updated_at = utcnow()


class Collector:
    """Works the rows of every worklist against one PACS."""

    def __init__(self, settings: Settings, engine: Engine, vault: IdentifierVault,
                 uid_of) -> None:  # type: ignore[no-untyped-def]
        assert settings.pacs_host is not None and settings.incoming_dir is not None
        self._settings = settings
        self._engine = engine
        self._vault = vault
        self._uid_of = uid_of
        self.pacs = Pacs(settings.pacs_host, settings.pacs_port, settings.pacs_ae_title,
                         settings.scp_ae_title, settings.pacs_timeout,
                         RateLimit(settings.collect_rate),
                         tlsconfig.dicom_client_factory(settings, settings.pacs_host),
                         dicomfiles.SizeLimits(settings.max_instance_bytes,
                                               settings.max_inflated_bytes),
                         OriginSeal.of(settings))

    def collect_row(self, row_id: int) -> None:
        """Find the row's studies and their series, then retrieve them; never raises."""
        try:
            self._collect(row_id)
        except PacsError as exc:
            _update(self._engine, row_id, state=RowState.FAILED, reason=str(exc))
        except Exception as exc:  # a row must never stay in hand because of one surprise
            # The type only: a parser's message may quote a value.
            log.error("collection row failed", extra={"row_id": row_id,
                                                      "error": type(exc).__name__})
            _update(self._engine, row_id, state=RowState.FAILED, reason=type(exc).__name__)

    def _collect(self, row_id: int) -> None:
        with Session(self._engine) as session:
            row = session.get(CollectionRow, row_id)
            assert row is not None and row.query_key_id and row.query_encrypted
            query = Query(**self._vault.open(row.query_key_id, row.query_encrypted))
        studies = self.pacs.find(_study_query(query))
        uids = sorted({str(s.get("StudyInstanceUID", "")) for s in studies} - {""})
        if not uids:
            _update(self._engine, row_id, state=RowState.NOT_FOUND,
                    reason="the PACS holds no study for this row")
            return
        if query.accession and len(uids) > 1:
            _update(self._engine, row_id, state=RowState.AMBIGUOUS,
                    reason=f"{len(uids)} studies carry this accession number; none retrieved")
            return
        series, instances = self._find_series(uids)
        _update(self._engine, row_id, state=RowState.FOUND, instances=instances,
                study_uids=[self._uid_of(u) for u in uids],
                series_uids=[self._uid_of(u) for u in series],
                reason=f"{len(uids)} study(ies), {len(series)} series, {instances} instance(s)")
        _update(self._engine, row_id, state=RowState.RETRIEVING)
        failed = sum(self._retrieve(uid, row_id).failed for uid in uids)
        if failed:
            _update(self._engine, row_id, state=RowState.FAILED,
                    reason=f"the PACS could not send {failed} instance(s)")
            return
        _update(self._engine, row_id, retrieved_at=utcnow())

    def _find_series(self, study_uids: list[str]) -> tuple[list[str], int]:
        series: list[str] = []
        instances = 0
        for study_uid in study_uids:
            for match in self.pacs.find(_series_query(study_uid)):
                uid = str(match.get("SeriesInstanceUID", ""))
                if uid:
                    series.append(uid)
                    instances += _int(match.get("NumberOfSeriesRelatedInstances"))
        return series, instances

    def _retrieve(self, study_uid: str, row_id: int):  # type: ignore[no-untyped-def]
        if self._settings.pacs_retrieve == "get":
            assert self._settings.incoming_dir is not None
            return self.pacs.get(study_uid, self._settings.incoming_dir,
                                 f"collect-{row_id}-{uuid.uuid4().hex[:8]}")
        return self.pacs.move(study_uid, self._settings.scp_ae_title)


def _study_query(query: Query) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = ""
    ds.AccessionNumber = query.accession
    ds.PatientID = query.patient_id
    if query.date_from or query.date_to:
        ds.StudyDate = f"{query.date_from}-{query.date_to}"
    else:
        ds.StudyDate = ""
    return ds


def _series_query(study_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = ""
    ds.NumberOfSeriesRelatedInstances = ""
    return ds


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def settle(engine: Engine, timeout: float) -> int:
    """Mark DONE (or FAILED) the retrieved rows whose series have all settled."""
    settled = 0
    with Session(engine) as session:
        rows = session.exec(select(CollectionRow).where(
            CollectionRow.state == RowState.RETRIEVING.value,
            col(CollectionRow.retrieved_at).is_not(None))).all()
        outcomes = [(row, _outcome(session, row, timeout)) for row in rows]
    for row, outcome in outcomes:
        if outcome is not None:
            assert row.id is not None
            _update(engine, row.id, state=outcome[0], reason=outcome[1])
            settled += 1
    return settled


def _outcome(session: Session, row: CollectionRow, timeout: float
             ) -> tuple[RowState, str] | None:
    found = session.exec(select(Series).where(
        col(Series.series_uid).in_(row.series_uids))).all()
    states = Counter(s.status for s in found)
    bad = sum(states[s] for s in GIVEN_UP)
    if bad:
        return RowState.FAILED, f"{bad} of {len(row.series_uids)} series failed in the relay"
    # A series its project dropped is as finished as one delivered.
    finished = states[Status.DONE] + states[Status.IGNORED]
    if len(found) == len(row.series_uids) and finished == len(found):
        ignored = states[Status.IGNORED]
        note = f", {ignored} IGNORED by their project" if ignored else ""
        return RowState.DONE, f"{states[Status.DONE]} series DONE{note}"
    assert row.retrieved_at is not None
    if utcnow() - _aware(row.retrieved_at) > timedelta(seconds=timeout):
        return RowState.FAILED, (f"{states[Status.DONE]} of {len(row.series_uids)} series "
                                 "DONE when the wait ran out")
    return None


def _aware(value: datetime) -> datetime:
    # SQLite hands datetimes back without their zone; they were written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def requeue_interrupted(engine: Engine) -> int:
    """Rows a stopped process had in hand are found and retrieved again: what arrives
    twice is merged by ingest without duplicates."""
    with session_scope(engine) as session:
        rows = session.exec(select(CollectionRow).where(
            col(CollectionRow.state).in_([RowState.FOUND.value, RowState.RETRIEVING.value]),
            col(CollectionRow.retrieved_at).is_(None))).all()
        for row in rows:
            row.state, row.attempts, row.updated_at = RowState.QUEUED.value, row.attempts + 1, \
                utcnow()
        return len(rows)


def queued(engine: Engine, limit: int) -> list[int]:
    with Session(engine) as session:
        return [int(i) for i in session.exec(select(CollectionRow.id).where(
            CollectionRow.state == RowState.QUEUED.value).order_by(col(CollectionRow.id))
            .limit(limit)).all() if i is not None]


async def run(rt: Runtime, stop: asyncio.Event) -> None:
    """Work queued rows, at most RELAY_COLLECT_MAX_CONCURRENT at once, until stopped."""
    settings = rt.settings
    collector = Collector(settings, rt.engine, rt.vault, rt.pseudonymizer.uid)
    slots = asyncio.Semaphore(settings.collect_max_concurrent)
    in_hand: set[int] = set()
    tasks: set[asyncio.Task[None]] = set()
    with contextlib.suppress(Exception):  # the database is down: the rows wait for a restart
        await asyncio.to_thread(requeue_interrupted, rt.engine)

    async def work(row_id: int) -> None:
        async with slots:
            await asyncio.to_thread(collector.collect_row, row_id)
        in_hand.discard(row_id)

    while not stop.is_set():
        try:
            for row_id in await asyncio.to_thread(queued, rt.engine, 100):
                if row_id not in in_hand:
                    in_hand.add(row_id)
                    task = asyncio.create_task(work(row_id))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            await asyncio.to_thread(settle, rt.engine, settings.collect_done_timeout)
        except Exception as exc:  # the database is down: the next round tries again
            log.warning("collect round failed", extra={"error": type(exc).__name__})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.collect_poll_interval)
    await asyncio.gather(*tasks, return_exceptions=True)
