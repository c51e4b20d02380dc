"""api: REST resources, the dashboard, probes and metrics over the relay's database."""

from __future__ import annotations

import asyncio
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException

from relay_api.auth import parse_entries
from relay_api.authn import Attempt, Authenticator, OnRefused
from relay_api.guard import RequestGuard
from relay_api.oidc import Provider
from relay_api.routes import (
    admin,
    collections,
    dashboard,
    failures,
    health,
    held,
    images,
    me,
    notifications,
    pixel_rules,
    preview,
    projects,
    provenance,
    review,
    review_page,
    search,
    series,
    signin,
    stats,
    studies,
)
from relay_api.schemas import problem_responses
from relay_api.sessions import Sessions, cookie_name
from relay_shared import audit
from relay_shared.production import Insecure, UnsafeInProduction, check_for_service
from relay_shared.runtime import Runtime, bind_port, serve_http
from relay_shared.signing import public_key_for

PROBLEM = "application/problem+json"
ROUTERS = (health, me, series, images, held, studies, failures, stats, search, collections,
           admin, projects, dashboard, notifications, provenance, preview, signin, review,
           review_page, pixel_rules)
DESCRIPTION = """Series received, de-identified and passed on, with their images, failures
and history. Every route but the probes and `/metrics` needs `Authorization: Bearer <token>`
(`relay token new --name NAME --role reader|operator|reviewer|admin`). Responses carry internal ids,
de-identified UIDs and pseudonyms only. Errors are `application/problem+json`."""


def create_app(rt: Runtime) -> FastAPI:
    settings = rt.settings
    app = FastAPI(title="DICOM Relay", version="1", description=DESCRIPTION,
                  docs_url="/api/docs" if settings.api_docs_enabled else None, redoc_url=None,
                  openapi_url="/api/v1/openapi.json")
    app.state.runtime = rt
    app.state.tokens = parse_entries(settings.api_tokens)
    if not app.state.tokens and not settings.oidc_issuer:
        check_for_service(settings, UnsafeInProduction(
            "RELAY_API_TOKENS", "empty, so nobody could use the API",
            Insecure.NO_API_TOKENS))
    app.state.signing_key = public_key_for(settings)  # production refuses it missing
    app.state.provider = Provider(settings) if settings.oidc_issuer else None
    app.state.sessions = Sessions(rt.engine, settings.session_max_age,
                                  settings.session_idle_timeout)
    authenticator = Authenticator(app.state.tokens, app.state.provider,
                                  settings.oidc_api_audience, refusal_recorder(rt),
                                  app.state.sessions.user)
    app.add_middleware(RequestGuard, authenticator=authenticator,  # type: ignore[arg-type]
                       session_cookie=cookie_name(settings.production),
                       max_body_bytes=settings.api_max_body_bytes,
                       timeout_s=settings.api_request_timeout)
    for module in ROUTERS:
        secured = module.router.prefix.startswith("/api/v1")
        app.include_router(module.router,
                           responses=problem_responses(401, 403, 413, 422, 503)
                           if secured else None)
    app.mount("/dashboard/static", dashboard.static_files(), name="dashboard-static")
    app.add_api_route("/", lambda: RedirectResponse("/dashboard"), include_in_schema=False)
    app.add_exception_handler(HTTPException, http_problem)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_problem)  # type: ignore[arg-type]
    return app


def refusal_recorder(rt: Runtime) -> OnRefused:
    def refused(attempt: Attempt) -> None:
        audit.write(rt.engine, audit.AuditEntry(
            action=audit.Action.DENIED if attempt.forbidden else audit.Action.SIGN_IN,
            actor=attempt.actor or "unknown", actor_kind="user" if attempt.actor else "token",
            address=attempt.address, outcome=audit.Outcome.FAILURE, what=attempt.reason))
    return refused


def problem(status: int, detail: object, **extra: object) -> dict[str, object]:
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    return {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}


async def http_problem(request: Request, exc: HTTPException) -> JSONResponse:
    # Starlette's own errors (unknown path, wrong method) come through here too.
    return JSONResponse(problem(exc.status_code, exc.detail), status_code=exc.status_code,
                        media_type=PROBLEM, headers=exc.headers)


async def validation_problem(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
    return JSONResponse(problem(422, "the request is not valid", errors=errors),
                        status_code=422, media_type=PROBLEM)


async def run(rt: Runtime, stop: asyncio.Event) -> None:
    sock = bind_port("RELAY_API_PORT", rt.settings.api_host, rt.settings.api_port)
    await serve_http(create_app(rt), sock, stop)
