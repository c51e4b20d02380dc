"""What every request meets before a route: the token, a body size limit, a time limit,
and the security headers every response carries.

A plain ASGI middleware, so that it runs before anything reads the body: an
unauthenticated caller is answered 401 without a byte of the body read, and a
body larger than the limit is refused (413) as it arrives, whatever its
Content-Length claims.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import CookieError, SimpleCookie
from typing import Any

from starlette.exceptions import HTTPException

from relay_api.authn import Authenticator, Principal, Refused

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

SECURED_PREFIX = "/api/v1/"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DASHBOARD_HEADER = b"x-relay-dashboard"
ACTIVITY_HEADER = b"x-relay-activity"
PUBLIC_PATHS = frozenset({"/api/v1/openapi.json"})
# JSON answers need nothing from the page's origin: nothing may load, frame or run.
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The pages show thumbnails and frames the script fetched with the token, as blob: URLs.
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
               "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
# FastAPI's Swagger page loads its scripts from a CDN and starts them inline; it is
# served only where RELAY_API_DOCS is on (never by default in production).
DOCS_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
               "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: "
               "https://fastapi.tiangolo.com; frame-ancestors 'none'; base-uri 'none'")
COMMON_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


class BodyTooLarge(HTTPException):
    """Raised from inside the body read: FastAPI lets an HTTPException through as it is,
    where any other exception there would become a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large(limit))


def too_large(limit: int) -> str:
    return f"the request body is larger than {limit} bytes (RELAY_API_MAX_BODY_BYTES)"


def policy_for(path: str) -> str:
    if path == "/api/docs" or path.startswith("/api/docs/"):
        return DOCS_POLICY
    if path in ("/", "/dashboard", "/review") or path.startswith(("/dashboard/", "/review/")):
        return PAGE_POLICY
    return API_POLICY


def with_headers(send: Send, path: str) -> Send:
    policy = policy_for(path).encode()

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", [])
                       if k.lower() != b"content-security-policy"]
            headers += [(b"content-security-policy", policy), *COMMON_HEADERS]
            if not any(k.lower() == b"cache-control" for k, _ in headers):
                headers.append((b"cache-control", b"no-store"))
            message["headers"] = headers
        await send(message)
    return sending


async def problem(send: Send, status: int, title: str, detail: str,
                  extra_headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    body = json.dumps({"type": "about:blank", "title": title, "status": status,
                       "detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/problem+json"),
                            (b"content-length", str(len(body)).encode()), *extra_headers]})
    await send({"type": "http.response.body", "body": body})


def bearer_of(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


async def refuse(send: Send, refused: Refused) -> None:
    if refused.status == 401:
        await problem(send, 401, "Unauthorized", refused.detail,
                      ((b"www-authenticate", b"Bearer"),))
    else:
        await problem(send, refused.status, "Forbidden", refused.detail)


def address_of(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def header_of(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def cookie_of(scope: Scope, name: str) -> str | None:
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(header_of(scope, b"cookie") or "")
    except CookieError:
        return None
    return cookies[name].value if name in cookies and cookies[name].value else None


def from_dashboard(scope: Scope) -> bool:
    """A header no other site can make a browser send here without this api's leave
    (CORS): with the SameSite cookie, what keeps other sites from acting as the user."""
    return header_of(scope, DASHBOARD_HEADER) == "1"


def person_acted(scope: Scope) -> bool:
    """Whether the console says a person did something lately (core.js), rather than the
    page refreshing on its own: only that keeps a signed-in session from going idle."""
    return from_dashboard(scope) and header_of(scope, ACTIVITY_HEADER) == "1"


def declared_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class RequestGuard:
    def __init__(self, app: App, authenticator: Authenticator, session_cookie: str,
                 max_body_bytes: int, timeout_s: float) -> None:
        self._app = app
        self._authenticator = authenticator
        self._session_cookie = session_cookie
        self._max_body = max_body_bytes
        self._timeout = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path = scope["path"]
        send = with_headers(send, path)
        if path.startswith(SECURED_PREFIX) and path not in PUBLIC_PATHS:
            try:
                principal = await self._caller(scope)
            except Refused as refused:
                await refuse(send, refused)
                return
            scope.setdefault("state", {})["token"] = principal
        if (declared_length(scope) or 0) > self._max_body:
            await problem(send, 413, "Content Too Large", too_large(self._max_body))
            return
        await self._run(scope, receive, send)

    async def _caller(self, scope: Scope) -> Principal:
        address = address_of(scope)
        token = bearer_of(scope)
        if token:
            return await self._authenticator.bearer(token, address)
        cookie = cookie_of(scope, self._session_cookie)
        if cookie:
            user = await self._authenticator.session(cookie, person_acted(scope))
            if user is not None:
                if scope["method"] not in SAFE_METHODS and not from_dashboard(scope):
                    raise Refused(403, f"a request signed in by cookie must carry "
                                  f"{DASHBOARD_HEADER.decode()} (the dashboard sends it)")
                return user
        raise Refused(401, "a valid bearer token is required")

    async def _run(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False
        received = 0

        async def counting() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self._max_body:
                raise BodyTooLarge(self._max_body)
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await asyncio.wait_for(self._app(scope, counting, sending), self._timeout)
        except BodyTooLarge:
            if not started:
                await problem(send, 413, "Content Too Large", too_large(self._max_body))
        except TimeoutError:
            log.warning("request took too long", extra={"path_template": _route_of(scope),
                                                        "limit_s": self._timeout})
            if not started:
                await problem(send, 503, "Service Unavailable",
                              f"the request took longer than {self._timeout:g} s "
                              "(RELAY_API_REQUEST_TIMEOUT)", ((b"retry-after", b"5"),))


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))
