"""Series status changes, seen where every stage commits them.

Stages set ``series.status`` in many places (ingest, deid, sender, the api's retry and
release, the projects' hold and drop). Rather than a call at each, one listener on
the ORM session notices every series whose status changed in a flush, whichever code
changed it. What it records goes into the same transaction, written just before the
commit when everything the transaction changed is flushed (a notification row, see
``relay_shared.notify``); what it observes (a metric) waits for the commit, so a
rolled-back change counts for nothing. A Core ``UPDATE series SET status`` would pass
it by: statuses change through the ORM.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from relay_shared.metrics import SERIES_DONE_SECONDS, SERIES_FINISHED, project_label
from relay_shared.models import Series, as_utc, utcnow

COMMITTED_KEY = "relay_transitions"
# A person or a retry may still move a series on from these, but no stage will.
FINAL = frozenset({"DONE", "FAILED", "QUARANTINED", "IGNORED"})


@dataclass(frozen=True)
class Transition:
    series_id: int
    status: str
    previous: str | None
    project: str
    received_at: datetime


# Called just before the commit, with everything flushed, for each transition of the
# transaction: the place to write rows that must commit with the change.
BeforeCommit = Callable[[Session, Transition], None]
_before_commit_hooks: list[BeforeCommit] = []


def install(before_commit: BeforeCommit | None = None) -> None:
    """Listen on every session of this process (idempotent); a hook is added once."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_soft_rollback", _forget)
    if before_commit is not None and before_commit not in _before_commit_hooks:
        _before_commit_hooks.append(before_commit)


def _value(status: Any) -> str | None:
    return None if status is None else str(getattr(status, "value", status))


def status_change(series: Series) -> tuple[str, str | None] | None:
    """(new, previous) if this flush changes the series' status, else None."""
    history = inspect(series).attrs.status.history
    if not history.added:
        return None
    new = _value(history.added[0])
    previous = _value(history.deleted[0]) if history.deleted else None
    if new is None or new == previous:
        return None
    return new, previous


def _after_flush(session: Session, _context: object) -> None:
    for obj in (*session.new, *session.dirty):
        if not isinstance(obj, Series) or obj.id is None:
            continue
        change = status_change(obj)
        if change is None:
            continue
        session.info.setdefault(COMMITTED_KEY, []).append(
            Transition(obj.id, change[0], change[1], project_label(obj),
                       as_utc(obj.created_at)))


def _before_commit(session: Session) -> None:
    # What the commit would flush is flushed now, so the hooks see the whole change
    # (a series' images, whatever order the stage set them in).
    session.flush()
    for transition in session.info.get(COMMITTED_KEY, []):
        for hook in _before_commit_hooks:
            hook(session, transition)


def _after_commit(session: Session) -> None:
    for transition in session.info.pop(COMMITTED_KEY, []):
        if transition.status in FINAL:
            SERIES_FINISHED.labels(status=transition.status, project=transition.project).inc()
        if transition.status == "DONE":
            seconds = (utcnow() - transition.received_at).total_seconds()
            SERIES_DONE_SECONDS.labels(project=transition.project).observe(max(seconds, 0.0))


def _forget(session: Session, _previous_transaction: object) -> None:
    session.info.pop(COMMITTED_KEY, None)
