"""Writing a notification in the transaction of the change it reports: a status change
that commits has its notification committed with it; one rolled back has none."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import event, func, insert, inspect, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from relay_shared import transitions
from relay_shared.models import (
    CollectionRow,
    Image,
    Notification,
    NotificationState,
    RowState,
    Series,
    Study,
    utcnow,
)
from relay_shared.notify.hooks import Event, Webhook, series_event

# Each engine's hooks: tests and `relay up` may hold several engines in one process.
_hooks: WeakKeyDictionary[Engine, Sequence[Webhook]] = WeakKeyDictionary()
ROWS_KEY = "relay_finished_collection_rows"
ROW_FINISHED = {RowState.DONE.value, RowState.FAILED.value, RowState.NOT_FOUND.value,
                RowState.AMBIGUOUS.value}


def install(engine: Engine, hooks: Sequence[Webhook]) -> None:
    """Record notifications for ``hooks`` on every session bound to ``engine``."""
    _hooks[engine] = list(hooks)
    transitions.install(_series_changed)
    if not event.contains(Session, "after_flush", _collect_rows):
        event.listen(Session, "after_flush", _collect_rows)
        event.listen(Session, "before_commit", _collections_changed)
        event.listen(Session, "after_soft_rollback", _forget_rows)


def _wanting(session: Session, wanted: Event | None) -> list[Webhook]:
    bind = session.get_bind()
    hooks = _hooks.get(bind) if isinstance(bind, Engine) else None
    return [h for h in hooks or () if wanted in h.events] if wanted else []


def _series_changed(session: Session, change: transitions.Transition) -> None:
    wanted = series_event(change.status)
    hooks = _wanting(session, wanted)
    if not hooks or wanted is None:
        return
    connection = session.connection()
    _write(connection, hooks, wanted, series_body(connection, change, wanted),
           series_id=change.series_id)


def _collect_rows(session: Session, _context: object) -> None:
    finished = {row.collection_id for row in session.dirty | session.new
                if isinstance(row, CollectionRow) and _newly_finished(row)}
    if finished:
        session.info.setdefault(ROWS_KEY, set()).update(finished)


def _forget_rows(session: Session, _previous_transaction: object) -> None:
    session.info.pop(ROWS_KEY, None)


def _collections_changed(session: Session) -> None:
    session.flush()
    finished = session.info.pop(ROWS_KEY, set())
    hooks = _wanting(session, Event.COLLECTION_FINISHED) if finished else []
    if not hooks:
        return
    connection = session.connection()
    for collection_id in sorted(finished):
        states: dict[str, int] = dict(connection.execute(
            select(CollectionRow.state, func.count()).where(
                CollectionRow.collection_id == collection_id).group_by(CollectionRow.state)
        ).all())
        if set(states) <= ROW_FINISHED:
            _write(connection, hooks, Event.COLLECTION_FINISHED,
                   _json(_envelope(Event.COLLECTION_FINISHED) | {"collection": {
                       "id": collection_id, "rows": sum(states.values()),
                       "rows_by_state": states}}),
                   collection_id=collection_id)


def _newly_finished(row: CollectionRow) -> bool:
    history = inspect(row).attrs.state.history
    return bool(history.added) and history.added[0] in ROW_FINISHED and \
        (not history.deleted or history.deleted[0] not in ROW_FINISHED)


def series_body(connection: Connection, change: transitions.Transition, wanted: Event) -> str:
    """Ids, de-identified UIDs, the pseudonym and counts: never an original value, nor
    an error text (which may quote a file); the API has the details."""
    series = connection.execute(
        select(Series.series_uid, Series.stage, Study.study_uid, Study.patient_pseudonym)
        .select_from(Series).outerjoin(Study, Study.id == Series.study_id)  # type: ignore[arg-type]
        .where(Series.id == change.series_id)).one()
    images = connection.execute(select(Image.status, func.count()).where(
        Image.series_id == change.series_id).group_by(Image.status)).all()
    return _json(_envelope(wanted) | {
        "project": change.project,
        "series": {"id": change.series_id, "status": change.status,
                   "previous_status": change.previous, "stage": _text(series.stage),
                   "series_uid": series.series_uid, "study_uid": series.study_uid,
                   "patient_pseudonym": series.patient_pseudonym},
        "images": {_text(status): count for status, count in images}})


def _envelope(wanted: Event) -> dict[str, Any]:
    return {"event": wanted.value, "event_id": uuid.uuid4().hex,
            "occurred_at": utcnow().isoformat()}


def _write(connection: Connection, hooks: Iterable[Webhook], wanted: Event, body: str,
           series_id: int | None = None, collection_id: int | None = None) -> None:
    now = utcnow()
    connection.execute(insert(Notification), [
        {"hook": hook.name, "event": wanted.value, "series_id": series_id,
         "collection_id": collection_id, "body": body, "attempts": 0,
         "state": NotificationState.PENDING.value, "next_attempt_at": now, "created_at": now}
        for hook in hooks])


def _text(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def _json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)
