"""The dashboard page. It is public and holds no data: the browser signs in with a
token and reads the JSON API with it (see static/dashboard.js)."""

from __future__ import annotations

from importlib import resources
from string import Template

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

router = APIRouter(tags=["dashboard"])
REFRESH_SECONDS = 5
_PAGE = Template(resources.files("relay_api").joinpath("templates/dashboard.html").read_text())


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
def dashboard() -> HTMLResponse:
    # Its security headers (scripts and styles only from the api itself) are set with
    # every other response's, by relay_api.guard.
    return HTMLResponse(_PAGE.substitute(refresh_seconds=REFRESH_SECONDS))


def static_files() -> StaticFiles:
    return StaticFiles(directory=str(resources.files("relay_api").joinpath("static")))
