"""Signing people in to the dashboard with the hospital's identity provider: the
authorization code flow with PKCE (S256), state and nonce checked, through Authlib.

The relay keeps the session (services/api/sessions.py) and gives the browser only an
HttpOnly, SameSite cookie that names it (Secure, with the __Host- prefix, in
production); the provider's tokens never reach the page. Every sign-in, refused or
not, and every sign-out is an entry of the audit trail.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any, Literal

from authlib.integrations.httpx_client import OAuth2Client
from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import RedirectResponse

from relay_api.oidc import NoRole, Provider, TokenRefused, User
from relay_api.sessions import PENDING_SECONDS, Sessions, cookie_name
from relay_shared import audit
from relay_shared.reasons import RelayError
from relay_shared.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/dashboard", tags=["dashboard"], include_in_schema=False)
PENDING_COOKIE = "relay-signin"
RETURN_COOKIE = "relay-signin-to"
# Where a sign-in may come back to: named, never a path from the query string, so the
# callback cannot be made to send anyone off the relay.
RETURN_PAGES = {"dashboard": "/dashboard", "review": "/review",
                "pixel-rules": "/review/pixel-rules"}
ReturnPage = Literal["dashboard", "review", "pixel-rules"]


class SignInFailed(RelayError):
    pass


def _parts(request: Request) -> tuple[Settings, Provider, Sessions]:
    settings: Settings = request.app.state.runtime.settings
    provider: Provider | None = request.app.state.provider
    if provider is None or not settings.oidc_client_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "sign-in with an identity provider is "
                            "not configured (RELAY_OIDC_ISSUER, RELAY_OIDC_CLIENT_ID)")
    return settings, provider, request.app.state.sessions


def callback_url(request: Request, settings: Settings) -> str:
    base = settings.public_url.rstrip("/") if settings.public_url else \
        str(request.base_url).rstrip("/")
    return f"{base}/dashboard/callback"


def _client(provider: Provider, settings: Settings, request: Request) -> OAuth2Client:
    secret = settings.oidc_client_secret.get_secret_value() \
        if settings.oidc_client_secret else None
    return OAuth2Client(client_id=settings.oidc_client_id, client_secret=secret,
                        token_endpoint_auth_method="client_secret_basic" if secret else "none",
                        scope=settings.oidc_scopes, redirect_uri=callback_url(request, settings),
                        code_challenge_method="S256", verify=provider.ssl_context(),
                        timeout=settings.oidc_timeout)


@router.get("/login")
def login(request: Request, to: ReturnPage = "dashboard") -> Response:
    """Off to the provider's sign-in page, with a fresh state, nonce and PKCE verifier;
    back, afterwards, to the page `to` names."""
    settings, provider, sessions = _parts(request)
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    extra = {"resource": settings.oidc_resource} if settings.oidc_resource else {}
    with _client(provider, settings, request) as client:
        url, _ = client.create_authorization_url(
            provider.metadata()["authorization_endpoint"], state=state, nonce=nonce,
            code_verifier=verifier, **extra)
    response = RedirectResponse(url, status.HTTP_303_SEE_OTHER)
    # Lax: the provider's redirect back is a top-level navigation from another site.
    response.set_cookie(PENDING_COOKIE, sessions.start_pending(state, nonce, verifier),
                        max_age=PENDING_SECONDS, path="/dashboard", httponly=True,
                        secure=settings.production, samesite="lax")
    response.set_cookie(RETURN_COOKIE, to, max_age=PENDING_SECONDS, path="/dashboard",
                        httponly=True, secure=settings.production, samesite="lax")
    return response


def _return_page(request: Request) -> str:
    return RETURN_PAGES.get(request.cookies.get(RETURN_COOKIE, ""), "/dashboard")


@router.get("/callback")
def callback(request: Request, code: str | None = None, state: str | None = None,
             error: str | None = None) -> Response:
    settings, provider, sessions = _parts(request)
    address = request.client.host if request.client else "unknown"
    cookie = request.cookies.get(PENDING_COOKIE)
    pending = sessions.take_pending(cookie) if cookie else None
    name: str | None = None
    try:
        if error:
            raise SignInFailed(f"the provider answered {_code_word(error)}")
        if pending is None or pending.state is None:
            raise SignInFailed("no sign-in under way in this browser, or it took longer "
                               f"than {PENDING_SECONDS // 60} minutes")
        if not state or not secrets.compare_digest(state, pending.state):
            raise SignInFailed("the state returned is not the one this sign-in sent")
        if not code:
            raise SignInFailed("the provider sent no authorization code")
        user = _exchange(request, settings, provider, code, pending.code_verifier or "",
                         pending.nonce or "")
    except NoRole as exc:
        name = exc.name
        return _failed(request, sessions, address, exc.reason, name)
    except (SignInFailed, TokenRefused) as exc:
        return _failed(request, sessions, address, exc.reason, name)
    except Exception:
        log.warning("dashboard sign-in failed at the provider", exc_info=True)
        return _failed(request, sessions, address, "the provider could not be asked", name)
    _trail(request, audit.Action.SIGN_IN, user.name, address, audit.Outcome.SUCCESS,
           "dashboard sign-in through the identity provider", user)
    response = RedirectResponse(_return_page(request), status.HTTP_303_SEE_OTHER)
    _forget_sign_in(response)
    response.set_cookie(cookie_name(settings.production), sessions.start(user),
                        max_age=int(sessions.max_age_s), path="/", httponly=True,
                        secure=settings.production, samesite="strict")
    return response


def _exchange(request: Request, settings: Settings, provider: Provider, code: str,
              verifier: str, nonce: str) -> User:
    metadata = provider.metadata()
    with _client(provider, settings, request) as client:
        token: dict[str, Any] = client.fetch_token(
            metadata["token_endpoint"], code=code, code_verifier=verifier,
            grant_type="authorization_code")
    assert settings.oidc_client_id is not None
    if "id_token" not in token:
        raise SignInFailed("the provider sent no ID token")
    provider.verify(token["id_token"], settings.oidc_client_id, nonce=nonce)
    audience = settings.oidc_api_audience
    assert audience is not None
    return provider.user(provider.verify(token["access_token"], audience))


def _code_word(error: str) -> str:
    """An OAuth error code from the query string, kept only if it looks like one."""
    return error if re.fullmatch(r"[a-z_]{1,40}", error) else "an error"


def _failed(request: Request, sessions: Sessions, address: str, reason: str,
            name: str | None) -> Response:
    _trail(request, audit.Action.SIGN_IN, name or "unknown", address, audit.Outcome.FAILURE,
           f"dashboard sign-in refused: {reason}", None)
    response = RedirectResponse(f"{_return_page(request)}?signin=failed",
                                status.HTTP_303_SEE_OTHER)
    _forget_sign_in(response)
    return response


def _forget_sign_in(response: Response) -> None:
    response.delete_cookie(PENDING_COOKIE, path="/dashboard")
    response.delete_cookie(RETURN_COOKIE, path="/dashboard")


def _trail(request: Request, action: audit.Action, actor: str, address: str,
           outcome: audit.Outcome, what: str, user: User | None) -> None:
    audit.write(request.app.state.runtime.engine, audit.AuditEntry(
        action=action, actor=actor, actor_kind="user",
        role=user.role.name.lower() if user else None, address=address, outcome=outcome,
        what=what))


@router.post("/logout", status_code=204)
def logout(request: Request) -> Response:
    """End the session: deleted here, the cookie cleared in the browser."""
    settings: Settings = request.app.state.runtime.settings
    sessions: Sessions = request.app.state.sessions
    if request.headers.get("x-relay-dashboard") != "1":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "sign out from the dashboard")
    name = cookie_name(settings.production)
    cookie = request.cookies.get(name)
    user = sessions.end(cookie) if cookie else None
    if user is not None:
        _trail(request, audit.Action.SIGN_OUT, user.name,
               request.client.host if request.client else "unknown", audit.Outcome.SUCCESS,
               "dashboard sign-out", user)
    response = Response(status_code=204)
    response.delete_cookie(name, path="/", secure=settings.production, httponly=True,
                           samesite="strict")
    return response
