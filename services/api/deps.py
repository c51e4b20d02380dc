"""Typed dependencies of the routes: the database session and the caller's role."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from relay_api.auth import Role, role_for
from relay_shared.runtime import Runtime

bearer = HTTPBearer(auto_error=False, description="A token made by `relay token new`")


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.runtime.engine) as session:
        yield session


def get_role(request: Request,
             credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
             ) -> Role:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    role = role_for(credentials.credentials, request.app.state.tokens)
    if role is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "the token is not valid",
                            headers={"WWW-Authenticate": "Bearer"})
    return role


def require(minimum: Role):  # type: ignore[no-untyped-def]
    def check(role: Annotated[Role, Depends(get_role)]) -> Role:
        if role < minimum:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"this needs the {minimum.name.lower()} role")
        return role
    return check


SessionDep = Annotated[Session, Depends(get_session)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
Reader = Annotated[Role, Depends(require(Role.READER))]
Operator = Annotated[Role, Depends(require(Role.OPERATOR))]
Admin = Annotated[Role, Depends(require(Role.ADMIN))]
# Row ids are 32-bit integers in PostgreSQL; a larger one can only be "not found".
Id = Annotated[int, Path(ge=1, le=2_147_483_647)]
# Bounded so that a database's integer type can always hold it.
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
