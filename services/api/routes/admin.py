"""The admin's view: the identifier mapping and the audit trail.

A date shift and the key id can undo a pseudonymisation's dates, so they are
served here only; readers see pseudonyms and de-identified UIDs.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlmodel import col, select

from relay_api import queries
from relay_api.audit import audit_read, resource
from relay_api.deps import Admin, Id, Offset, SessionDep
from relay_api.queries import events_of
from relay_api.schemas import AuditEvent, AuditTrailEntry, IdentifierMapping, Page, SeriesAudit
from relay_shared.audit import Action, AuditObject, Outcome
from relay_shared.models import AuditRecord, Event, Image, Series, SeriesIdentifiers

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


@router.get("/identifiers", response_model=Page[IdentifierMapping])
def list_identifiers(session: SessionDep, caller: Admin,
                     patient_pseudonym: Annotated[str | None, Query(max_length=64)] = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 100,
                     offset: Offset = 0
                     ) -> Page[IdentifierMapping]:
    query = select(SeriesIdentifiers)
    if patient_pseudonym is not None:
        query = query.where(SeriesIdentifiers.patient_pseudonym == patient_pseudonym)
    total = queries.total_of(session, query)
    rows = session.exec(query.order_by(col(SeriesIdentifiers.series_id).desc())
                        .offset(offset).limit(limit))
    items = [IdentifierMapping.model_validate(r, from_attributes=True) for r in rows]
    objects = [AuditObject("patient-record", "/api/v1/admin/identifiers", "identifier mapping")]
    objects += [AuditObject("patient", p) for p in sorted({i.patient_pseudonym for i in items
                                                           if i.patient_pseudonym})]
    audit_read(session, caller, f"identifier mapping: {len(items)} row(s)"
               + (" for one patient pseudonym" if patient_pseudonym is not None else ""),
               objects=tuple(objects))
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/series/{series_id}/audit", response_model=SeriesAudit,
            responses={404: {"description": "No such series"}})
def series_audit(series_id: Id, session: SessionDep, caller: Admin) -> SeriesAudit:
    series = session.get(Series, series_id)
    if series is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"series {series_id} does not exist")
    mapping = session.exec(select(SeriesIdentifiers)
                           .where(SeriesIdentifiers.series_id == series_id)).first()
    quarantined = session.exec(select(Image.quarantine_path).where(
        Image.series_id == series_id, col(Image.quarantine_path).is_not(None)))
    answer = SeriesAudit(
        series_id=series_id, key_id=series.key_id, audit=series.audit,
        identifiers=IdentifierMapping.model_validate(mapping, from_attributes=True)
        if mapping else None,
        quarantined_files=[p for p in quarantined if p], events=events_of(session, series_id))
    audit_read(session, caller, "series audit record", series_id,
               (resource(f"/api/v1/admin/series/{series_id}/audit", "series audit record"),))
    return answer


@router.get("/events", response_model=Page[AuditEvent])
def list_events(session: SessionDep, caller: Admin,
                series_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
                kind: Annotated[str | None, Query(max_length=32)] = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                offset: Offset = 0) -> Page[AuditEvent]:
    """The append-only history of every series, newest first."""
    query = select(Event)
    if series_id is not None:
        query = query.where(Event.series_id == series_id)
    if kind is not None:
        query = query.where(Event.kind == kind)
    total = queries.total_of(session, query)
    rows = session.exec(query.order_by(col(Event.id).desc()).offset(offset).limit(limit))
    items = [AuditEvent.model_validate(e, from_attributes=True) for e in rows]
    # Kept as the relay's own event: a filter may name a series that does not exist.
    audit_read(session, caller, f"event trail: {len(items)} event(s)"
               + (f" of series {series_id}" if series_id is not None else ""),
               objects=(AuditObject("audit-log", "/api/v1/admin/events", "event trail"),))
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/audit", response_model=Page[AuditTrailEntry])
def list_audit_trail(session: SessionDep, caller: Admin,
                     actor: Annotated[str | None, Query(max_length=128)] = None,
                     action: Action | None = None,
                     outcome: Outcome | None = None,
                     series_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                     offset: Offset = 0) -> Page[AuditTrailEntry]:
    """The security audit trail, newest first: every sign-in (and refusal), read of
    identifying data, retry, release, drop, configuration change and series exported,
    with who, when and from where."""
    query = select(AuditRecord)
    for column, value in ((AuditRecord.actor, actor), (AuditRecord.action, action),
                          (AuditRecord.outcome, outcome), (AuditRecord.series_id, series_id)):
        if value is not None:
            query = query.where(column == value)
    total = queries.total_of(session, query)
    rows = session.exec(query.order_by(col(AuditRecord.id).desc()).offset(offset).limit(limit))
    items = [AuditTrailEntry.model_validate(r, from_attributes=True) for r in rows]
    audit_read(session, caller, f"audit trail: {len(items)} record(s)",
               objects=(AuditObject("audit-log", "/api/v1/admin/audit", "audit trail"),))
    return Page(items=items, total=total, limit=limit, offset=offset)
