from __future__ import annotations

from fastapi import APIRouter

from relay_api.deps import Reader
from relay_api.schemas import Me

router = APIRouter(prefix="/api/v1/me", tags=["session"])


@router.get("", response_model=Me)
def whoami(caller: Reader) -> Me:
    """The caller's role and name, so that a client shows only what the role may do."""
    return Me(role=caller.role.name.lower(), name=caller.token.label, kind=caller.token.kind)
