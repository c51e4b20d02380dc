"""api: REST resources, probes and metrics over the relay's database."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from relay_api.auth import parse_entries
from relay_api.routes import health, series, studies
from relay_shared.runtime import Runtime, serve_http

PROBLEM = "application/problem+json"


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(title="DICOM Relay", version="1", docs_url="/api/docs",
                  openapi_url="/api/v1/openapi.json")
    app.state.runtime = rt
    app.state.tokens = parse_entries(rt.settings.api_tokens)
    for module in (health, series, studies):
        app.include_router(module.router)

    @app.exception_handler(HTTPException)
    async def http_problem(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"type": "about:blank", "title": _title(exc.status_code),
                             "status": exc.status_code, "detail": exc.detail},
                            status_code=exc.status_code, media_type=PROBLEM,
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_problem(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"type": "about:blank", "title": "Unprocessable Content",
                             "status": 422, "detail": "the request is not valid",
                             "errors": [{"loc": e["loc"], "msg": e["msg"]}
                                        for e in exc.errors()]},
                            status_code=422, media_type=PROBLEM)

    return app


def _title(code: int) -> str:
    from http import HTTPStatus
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Error"


async def run(rt: Runtime, stop: asyncio.Event) -> None:
    await serve_http(create_app(rt), rt.settings.api_host, rt.settings.api_port, stop)
