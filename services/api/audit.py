"""Who read identifying data, and who changed a series' course: each an event.

An admin's read of the identifier mapping, of a series' audit or of the event
trail, and every retry or release, is kept in the series' history (or, for a
read of no one series, in the relay's) with the token's name, the time and the
caller's address, so a privacy officer can answer "who looked at this?".
"""

from __future__ import annotations

import logging

from sqlmodel import Session

from relay_api.deps import Caller
from relay_shared.db import record_event

log = logging.getLogger(__name__)
SERVICE = "api"


def audit(session: Session, caller: Caller, kind: str, what: str,
          series_id: int | None = None) -> None:
    """Add the event to `session`; the route commits it with its own work."""
    record_event(session, series_id, SERVICE, kind, f"{what} {caller.describe()}")
    log_audited(caller, kind, series_id)


def log_audited(caller: Caller, kind: str, series_id: int | None = None) -> None:
    """The log line of an audited act, for an event the state machine records."""
    log.info("audited", extra={"kind": kind, "token_name": caller.token.label,
                               "role": caller.role.name.lower(), "address": caller.address,
                               "series_id": series_id})


def audit_read(session: Session, caller: Caller, what: str,
               series_id: int | None = None) -> None:
    """A read: its event is committed on its own, the read itself changing nothing."""
    audit(session, caller, "read", what, series_id)
    session.commit()
