"""Audit entries: what the trail holds, how one is kept with the work it describes,
and how it reaches the syslog sender once that work is committed."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from relay_shared.db import PROCESS_NAME, session_scope
from relay_shared.models import AuditRecord, utcnow

log = logging.getLogger(__name__)
PENDING_KEY = "relay_audit_pending"


class Action(StrEnum):
    SIGN_IN = "sign-in"
    SIGN_OUT = "sign-out"
    DENIED = "denied"  # signed in, but the role does not allow it
    READ = "read"  # identifying data: mapping, audit records, originals, before/after
    RETRY = "retry"
    RELEASE = "release"
    DROP = "drop"
    APPROVE = "approve"  # a reviewer let a series under review go
    REJECT = "reject"  # a reviewer kept it back
    CONFIGURATION = "configuration"
    EXPORT = "export"  # a series delivered to its destinations
    START = "start"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True)
class AuditObject:
    """What an act touched, as the audit message names it: `kind` is `patient` (a
    pseudonym), `study` (a de-identified study UID), `resource` (an API path),
    `destination` or `configuration`."""

    kind: str
    id: str
    name: str | None = None
    instances: int | None = None


@dataclass(frozen=True)
class AuditEntry:
    action: Action
    actor: str
    actor_kind: str  # token, user, system
    what: str
    outcome: Outcome = Outcome.SUCCESS
    role: str | None = None
    address: str | None = None
    series_id: int | None = None
    objects: tuple[AuditObject, ...] = ()
    at: datetime = field(default_factory=utcnow)

    def row(self) -> AuditRecord:
        return AuditRecord(at=self.at, actor=self.actor[:128], actor_kind=self.actor_kind,
                           role=self.role, action=self.action.value,
                           outcome=self.outcome.value, address=(self.address or "")[:64] or None,
                           series_id=self.series_id, detail=self.what, process=PROCESS_NAME)


class Sink(Protocol):
    """Where committed entries go on to (relay_shared.audit.syslog.SyslogSender)."""

    def offer(self, entry: AuditEntry) -> bool: ...

    def close(self, timeout: float = 5.0) -> None: ...


_sender: Sink | None = None


def install(sender: Sink | None) -> None:
    """Send every committed entry of this process to `sender` (None: keep them only)."""
    global _sender
    _sender = sender
    if not event.contains(Session, "after_commit", _after_commit):
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_soft_rollback", _forget)


def uninstall() -> Sink | None:
    global _sender
    sender, _sender = _sender, None
    return sender


def record(session: Session, entry: AuditEntry) -> None:
    """Keep `entry` with the session's work: written and sent only if it commits."""
    session.add(entry.row())
    session.info.setdefault(PENDING_KEY, []).append(entry)


def write(engine: Engine, entry: AuditEntry) -> None:
    """Keep `entry` on its own (a refused sign-in changes nothing else)."""
    with session_scope(engine) as session:
        record(session, entry)


def _after_commit(session: Session) -> None:
    entries: list[AuditEntry] = session.info.pop(PENDING_KEY, [])
    sender = _sender
    if sender is None:
        return
    for entry in entries:
        sender.offer(entry)


def _forget(session: Session, _transaction: object) -> None:
    session.info.pop(PENDING_KEY, None)
