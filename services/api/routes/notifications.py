"""Webhook notifications: what is waiting, what arrived, what gave up; and sending
one that gave up again. Operators and admins only: the bodies hold pseudonyms."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel
from sqlmodel import col, select

from relay_api import queries
from relay_api.audit import audited, resource
from relay_api.deps import Id, Offset, Operator, RuntimeDep, SessionDep
from relay_api.schemas import Page
from relay_shared.db import session_scope
from relay_shared.models import Notification, NotificationState, utcnow

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])


class NotificationOut(BaseModel):
    id: int
    hook: str
    event: str
    series_id: int | None
    collection_id: int | None
    state: NotificationState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    body: dict[str, Any]


def _out(row: Notification) -> NotificationOut:
    assert row.id is not None
    return NotificationOut(**row.model_dump(exclude={"body"}), body=json.loads(row.body))


@router.get("", response_model=Page[NotificationOut])
def list_notifications(session: SessionDep, _: Operator,
                       state: NotificationState | None = None,
                       hook: Annotated[str | None, Query(max_length=32)] = None,
                       limit: Annotated[int, Query(ge=1, le=500)] = 100,
                       offset: Offset = 0) -> Page[NotificationOut]:
    """Notifications, oldest first; `state=PENDING` and `state=GAVE_UP` are the
    undelivered ones."""
    query = select(Notification)
    if state is not None:
        query = query.where(Notification.state == state.value)
    if hook is not None:
        query = query.where(Notification.hook == hook)
    total = queries.total_of(session, query)
    rows = session.exec(query.order_by(col(Notification.id)).offset(offset).limit(limit))
    return Page(items=[_out(row) for row in rows], total=total, limit=limit, offset=offset)


@router.post("/{notification_id}/retry", response_model=NotificationOut,
             responses={404: {"description": "No such notification"},
                        409: {"description": "It was delivered already"}})
def retry_notification(notification_id: Id, rt: RuntimeDep, caller: Operator
                       ) -> NotificationOut:
    """Send a notification again from its first attempt (one that gave up, once its
    receiver is fixed). It keeps its place: it goes before its hook's later ones."""
    with session_scope(rt.engine) as session:
        row = session.get(Notification, notification_id)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND,
                                f"notification {notification_id} does not exist")
        if row.state == NotificationState.DELIVERED:
            raise HTTPException(status.HTTP_409_CONFLICT,
                                f"notification {notification_id} was delivered")
        row.state, row.attempts, row.next_attempt_at = NotificationState.PENDING.value, 0, \
            utcnow()
        audited(session, caller, "retry", f"notification {notification_id} to hook "
                f"{row.hook} queued again", row.series_id,
                (resource(f"/api/v1/notifications/{notification_id}"),))
        return _out(row)
