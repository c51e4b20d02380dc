"""Typed dependencies of the routes: the database session and the caller."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from relay_api.auth import Role, TokenEntry, entry_for
from relay_api.oidc import User
from relay_shared import audit
from relay_shared.runtime import Runtime

bearer = HTTPBearer(auto_error=False, description="A token made by `relay token new`")


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.runtime.engine) as session:
        yield session


@dataclass(frozen=True)
class Caller:
    """Who is asking: a machine token (by name, never its value) or a person signed in
    through the identity provider, and the address the request came from."""

    token: TokenEntry | User
    address: str

    @property
    def role(self) -> Role:
        return self.token.role

    def describe(self) -> str:
        return (f"by {self.token.kind} {self.token.label} ({self.role.name.lower()}) "
                f"from {self.address}")


def get_caller(request: Request,
               credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
               ) -> Caller:
    # The request guard has checked the token before the body was read; this finds it
    # again for routes served without the guard (a test app) and declares the scheme.
    entry = getattr(request.state, "token", None)
    if entry is None and credentials is not None and credentials.scheme.lower() == "bearer":
        entry = entry_for(credentials.credentials, request.app.state.tokens)
    if entry is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a valid bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    return Caller(entry, request.client.host if request.client else "unknown")


def require(minimum: Role):  # type: ignore[no-untyped-def]
    # `minimum`: the role whose rights the route needs (see Role.may).
    def check(request: Request, caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
        if not caller.role.may(minimum):
            needed = f"this needs the {minimum.name.lower()} role"
            # A security alert for the trail: someone tried what their role does not allow.
            audit.write(request.app.state.runtime.engine, audit.AuditEntry(
                action=audit.Action.DENIED, actor=caller.token.label,
                actor_kind=caller.token.kind, role=caller.role.name.lower(),
                address=caller.address, outcome=audit.Outcome.FAILURE,
                what=f"{request.method} {request.url.path}: {needed}",
                objects=(audit.AuditObject("resource", request.url.path),)))
            raise HTTPException(status.HTTP_403_FORBIDDEN, needed)
        return caller
    return check


SessionDep = Annotated[Session, Depends(get_session)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
Reader = Annotated[Caller, Depends(require(Role.READER))]
Operator = Annotated[Caller, Depends(require(Role.OPERATOR))]
Reviewer = Annotated[Caller, Depends(require(Role.REVIEWER))]
Admin = Annotated[Caller, Depends(require(Role.ADMIN))]
# Row ids are 32-bit integers in PostgreSQL; a larger one can only be "not found".
Id = Annotated[int, Path(ge=1, le=2_147_483_647)]
# Bounded so that a database's integer type can always hold it.
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
