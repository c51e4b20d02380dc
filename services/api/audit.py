"""Who read identifying data, who changed a series' course, who signed in or was
refused: each an entry of the audit trail (relay_shared.audit), and, for a series,
an event of its history.

An admin's read of the identifier mapping, of a series' audit or of the trails, and
every retry, release and drop, is kept with the caller's name (a token's or a
person's), the time and the caller's address, so a privacy officer can answer "who
looked at this?"; the same entry goes to the SIEM when RELAY_AUDIT_SYSLOG is set.
"""

from __future__ import annotations

import logging

from sqlmodel import Session

from relay_api.deps import Caller
from relay_shared.audit import Action, AuditEntry, AuditObject, Outcome, record
from relay_shared.db import record_event

log = logging.getLogger(__name__)
SERVICE = "api"
# The series history's event kinds, as the trail names the same acts.
ACTIONS = {"read": Action.READ, "retry": Action.RETRY, "released": Action.RELEASE,
           "ignored": Action.DROP, "approved": Action.APPROVE, "rejected": Action.REJECT,
           "pixel_rule": Action.CONFIGURATION, "pixel_rules": Action.READ}


def entry(caller: Caller, action: Action, what: str, series_id: int | None = None,
          objects: tuple[AuditObject, ...] = (), outcome: Outcome = Outcome.SUCCESS
          ) -> AuditEntry:
    return AuditEntry(action=action, actor=caller.token.label, actor_kind=caller.token.kind,
                      role=caller.role.name.lower(), address=caller.address, what=what,
                      series_id=series_id, objects=objects, outcome=outcome)


def audit(session: Session, caller: Caller, kind: str, what: str,
          series_id: int | None = None, objects: tuple[AuditObject, ...] = ()) -> None:
    """Add the event and the trail's entry to `session`; the route commits them with
    its own work."""
    record_event(session, series_id, SERVICE, kind, f"{what} {caller.describe()}")
    audited(session, caller, kind, what, series_id, objects)


def audited(session: Session, caller: Caller, kind: str, what: str,
            series_id: int | None = None, objects: tuple[AuditObject, ...] = ()) -> None:
    """The trail's entry and the log line of an act whose series event the state
    machine records."""
    record(session, entry(caller, ACTIONS[kind], what, series_id, objects))
    log.info("audited", extra={"kind": kind, "token_name": caller.token.label,
                               "role": caller.role.name.lower(), "address": caller.address,
                               "series_id": series_id})


def audit_read(session: Session, caller: Caller, what: str, series_id: int | None = None,
               objects: tuple[AuditObject, ...] = ()) -> None:
    """A read: its entries are committed on their own, the read itself changing nothing."""
    audit(session, caller, "read", what, series_id, objects)
    session.commit()


def resource(path: str, name: str | None = None) -> AuditObject:
    """An object of the trail named by its API path."""
    return AuditObject("resource", path, name)
