"""The dashboard page. It is public and holds no data: the browser signs in with a
token and reads the JSON API with it (see static/dashboard.js)."""

from __future__ import annotations

from importlib import resources
from string import Template

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

router = APIRouter(tags=["dashboard"])
REFRESH_SECONDS = 5
_PAGE = Template(resources.files("relay_api").joinpath("templates/dashboard.html").read_text())


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
def dashboard(request: Request) -> HTMLResponse:
    # Its security headers (scripts and styles only from the api itself) are set with
    # every other response's, by relay_api.guard.
    settings = request.app.state.runtime.settings
    oidc = "on" if settings.oidc_issuer and settings.oidc_client_id else "off"
    return HTMLResponse(_PAGE.substitute(refresh_seconds=REFRESH_SECONDS, oidc=oidc))


def static_files() -> StaticFiles:
    # An editable install (make setup) links each file into the package folder:
    # follow those links; the folder itself is the package's, never a user's.
    return StaticFiles(directory=str(resources.files("relay_api").joinpath("static")),
                       follow_symlink=True)
