"""Retention: what the relay keeps, it keeps only as long as configured.

Originals sealed for the admin's mapping are emptied some days after their
series is DONE (the pseudonymous audit stays); quarantined files and the
working files of series that stay FAILED are removed after theirs; nothing of a
series waiting for review is. Every purge is an event in the series' history.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from relay_shared.db import record_event, session_scope
from relay_shared.models import Series, SeriesIdentifiers, Status, utcnow
from relay_shared.paths import WorkStore
from relay_shared.series_state import GIVEN_UP
from relay_shared.settings import Settings

SERVICE = "purge"


@dataclass
class PurgeReport:
    originals: list[int] = field(default_factory=list)
    quarantine: list[int] = field(default_factory=list)
    failed_work: list[int] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"originals of {len(self.originals)} series",
                f"quarantined files of {len(self.quarantine)} series",
                f"working files of {len(self.failed_work)} failed series"]


def purge(engine: Engine, store: WorkStore, settings: Settings, dry_run: bool = False,
          now: datetime | None = None) -> PurgeReport:
    now = now or utcnow()
    report = PurgeReport()
    with Session(engine) as session:
        report.originals = _sealed_originals(session, now - _days(settings.retain_originals_days))
        report.quarantine = _with_files(session, now - _days(settings.retain_quarantine_days),
                                        None, store.quarantine_for)
        report.failed_work = _with_files(session, now - _days(settings.retain_failed_work_days),
                                         GIVEN_UP, store.series_dir)
    if not dry_run:
        _purge_originals(engine, report.originals, now)
        _remove(engine, report.quarantine, store.quarantine_for, "quarantined files")
        _remove(engine, report.failed_work, store.series_dir, "working files")
    return report


def _days(days: float) -> timedelta:
    return timedelta(days=days)


def _sealed_originals(session: Session, cutoff: datetime) -> list[int]:
    query = (select(SeriesIdentifiers.series_id)
             .join(Series, col(Series.id) == SeriesIdentifiers.series_id)
             .where(Series.status == Status.DONE, col(Series.updated_at) < cutoff,
                    col(SeriesIdentifiers.original_encrypted).is_not(None)))
    return list(session.exec(query))


def _with_files(session: Session, cutoff: datetime, statuses: tuple[Status, ...] | None,
                folder_of) -> list[int]:  # type: ignore[no-untyped-def]
    # A series under review keeps every file until a reviewer decides, however long
    # that takes: the reviewer looks at them, and a rejection quarantines them.
    query = select(Series.id).where(col(Series.updated_at) < cutoff,
                                    Series.status != Status.REVIEW)
    if statuses:
        query = query.where(col(Series.status).in_(statuses))
    return [sid for sid in session.exec(query) if sid is not None and folder_of(sid).exists()]


def _purge_originals(engine: Engine, series_ids: list[int], now: datetime) -> None:
    for series_id in series_ids:
        with session_scope(engine) as session:
            row = session.exec(select(SeriesIdentifiers).where(
                SeriesIdentifiers.series_id == series_id)).one()
            row.original_encrypted, row.original_key_id = None, None
            row.originals_purged_at = now
            record_event(session, series_id, SERVICE, "purged",
                         "original identity removed; the pseudonymous audit stays")


def _remove(engine: Engine, series_ids: list[int], folder_of, what: str) -> None:  # type: ignore[no-untyped-def]
    for series_id in series_ids:
        folder: Path = folder_of(series_id)
        shutil.rmtree(folder, ignore_errors=True)
        with session_scope(engine) as session:
            record_event(session, series_id, SERVICE, "purged", f"{what} removed")
