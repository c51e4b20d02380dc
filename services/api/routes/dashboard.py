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
# Scripts and styles only from the api itself: a value that slipped into the page
# as markup still could not run.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_PAGE = Template(resources.files("relay_api").joinpath("templates/dashboard.html").read_text())


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
def dashboard() -> HTMLResponse:
    return HTMLResponse(_PAGE.substitute(refresh_seconds=REFRESH_SECONDS),
                        headers=SECURITY_HEADERS)


def static_files() -> StaticFiles:
    # An editable install (make setup) links each file into the package folder:
    # follow those links; the folder itself is the package's, never a user's.
    return StaticFiles(directory=str(resources.files("relay_api").joinpath("static")),
                       follow_symlink=True)
