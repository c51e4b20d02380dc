"""Every series exported is an entry of the audit trail: when a series becomes DONE,
in the same transaction, with its destinations, its patient's pseudonym and the
number of instances sent. The relay itself is the actor."""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.orm import Session
from sqlmodel import col, select

from relay_shared.audit.trail import Action, AuditEntry, AuditObject, record
from relay_shared.models import Delivery, Image, Series, Status, Study
from relay_shared.transitions import Transition

ACTOR = "relay"


def exported(session: Session, transition: Transition) -> None:
    """A before-commit hook of relay_shared.transitions."""
    if transition.status != Status.DONE.value:
        return
    series = session.get(Series, transition.series_id)
    if series is None:
        return
    destinations = sorted(session.scalars(
        select(Delivery.destination).where(Delivery.series_id == series.id).distinct()))
    instances = session.scalar(select(func.count()).select_from(Image).where(
        Image.series_id == series.id, col(Image.status) == Status.DONE)) or 0
    study = session.get(Study, series.study_id) if series.study_id else None
    objects = [AuditObject("destination", d) for d in destinations]
    if study is not None and study.patient_pseudonym:
        objects.append(AuditObject("patient", study.patient_pseudonym))
    objects.append(AuditObject("resource", f"/api/v1/series/{series.id}",
                               f"series {series.id}", instances))
    record(session, AuditEntry(
        action=Action.EXPORT, actor=ACTOR, actor_kind="system", series_id=series.id,
        what=f"series {series.id} of project {transition.project}: {instances} instance(s) "
             f"de-identified and sent to {', '.join(destinations) or 'its destinations'}",
        objects=tuple(objects)))
