"""Dashboard sessions, kept in the database by the SHA-256 of their cookie (the cookie
itself is never stored), so any api replica knows them and signing out ends them.

A sign-in first has a pending session (its state, nonce and PKCE verifier); when the
provider sends the person back it is replaced by a signed-in session under a new
cookie, so a cookie planted before the sign-in is worth nothing after it.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from relay_api.auth import Role
from relay_api.oidc import User
from relay_shared.db import session_scope
from relay_shared.models import WebSession, as_utc, utcnow

PENDING_SECONDS = 600  # the time a person has to sign in at the provider


def cookie_name(production: bool) -> str:
    """In production the __Host- prefix: the browser keeps the cookie only if it is
    Secure, set by this host itself and for every path, so no neighbour sets it."""
    return "__Host-relay-session" if production else "relay-session"


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


class Sessions:
    """A signed-in session ends `max_age_s` after the sign-in, or `idle_s` after the
    person last did something (`user(..., active=True)`), whichever comes first."""

    def __init__(self, engine: Engine, max_age_s: float, idle_s: float) -> None:
        self._engine = engine
        self.max_age_s = max_age_s
        self.idle_s = min(idle_s, max_age_s)
        # The expiry is moved on at most this often: not a database write per request.
        self._extend_every = timedelta(seconds=min(60.0, self.idle_s / 10))

    def start_pending(self, state: str, nonce: str, verifier: str) -> str:
        cookie = secrets.token_urlsafe(32)
        with session_scope(self._engine) as session:
            self._purge(session)
            session.add(WebSession(cookie_sha256=_digest(cookie), state=state, nonce=nonce,
                                   code_verifier=verifier,
                                   expires_at=utcnow() + timedelta(seconds=PENDING_SECONDS)))
        return cookie

    def take_pending(self, cookie: str) -> WebSession | None:
        """The pending sign-in of this cookie, removed: a code is exchanged once."""
        with session_scope(self._engine) as session:
            row = self._live(session, cookie)
            if row is None or row.state is None:
                return None
            session.delete(row)
            session.expunge(row)
            return row

    def start(self, user: User) -> str:
        cookie = secrets.token_urlsafe(32)
        with session_scope(self._engine) as session:
            session.add(WebSession(cookie_sha256=_digest(cookie), subject=user.subject,
                                   name=user.name, role=user.role.name.lower(),
                                   expires_at=utcnow() + timedelta(seconds=self.idle_s)))
        return cookie

    def user(self, cookie: str, active: bool = False) -> User | None:
        """Who this cookie signs in, if anyone still; `active` (the person did something)
        moves the idle expiry on, never past the session's whole lifetime."""
        with session_scope(self._engine) as session:
            row = self._live(session, cookie)
            if row is None or row.role is None or row.subject is None:
                return None
            if active:
                self._extend(row)
            return User(subject=row.subject, name=row.name or row.subject,
                        role=Role[row.role.upper()])

    def _extend(self, row: WebSession) -> None:
        now = utcnow()
        idle_ends = now + timedelta(seconds=self.idle_s)
        if idle_ends - as_utc(row.expires_at) < self._extend_every:
            return
        lifetime_ends = as_utc(row.created_at) + timedelta(seconds=self.max_age_s)
        row.expires_at = min(idle_ends, lifetime_ends)

    def end(self, cookie: str) -> User | None:
        """Sign out: the session is deleted; who it was, for the trail."""
        user = self.user(cookie)
        with session_scope(self._engine) as session:
            session.execute(delete(WebSession).where(
                col(WebSession.cookie_sha256) == _digest(cookie)))
        return user

    @staticmethod
    def _live(session: Session, cookie: str) -> WebSession | None:
        return session.exec(select(WebSession).where(
            WebSession.cookie_sha256 == _digest(cookie),
            col(WebSession.expires_at) > utcnow())).first()

    @staticmethod
    def _purge(session: Session) -> None:
        session.execute(delete(WebSession).where(col(WebSession.expires_at) <= utcnow()))
