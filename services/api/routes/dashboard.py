"""The operator console. The page is public and holds no data: the browser signs in
with a token and reads the JSON API with it (see static/dashboard.js). Only the
fixed words for each status are filled in here, so the page and the API name the
states alike."""

from __future__ import annotations

from html import escape
from importlib import resources
from string import Template

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from relay_api.wording import STATUS_WORDS

router = APIRouter(tags=["dashboard"])
REFRESH_SECONDS = 5
_PAGE = Template(resources.files("relay_api").joinpath("templates/dashboard.html").read_text())


def _status_cards() -> str:
    return "".join(
        f'<div class="card status-{status.value}" data-status="{status.value}">'
        f"<b>0</b><span>{escape(words)}</span></div>" for status, words in STATUS_WORDS.items())


def _status_options() -> str:
    return "".join(f'<option value="{status.value}">{escape(words)}</option>'
                   for status, words in STATUS_WORDS.items())


# The columns of every table of series (the newest, a search's results), as the
# page's scripts fill them (static/overview.js, seriesRow).
SERIES_COLUMNS = ("Series", "Project", "Modality", "Patient pseudonym", "Status", "Images",
                  "Progress", "Last change")


def _series_head() -> str:
    cells = "".join(f'<th scope="col">{escape(name)}</th>' for name in SERIES_COLUMNS)
    return f"<thead><tr>{cells}</tr></thead>"


# What the page holds for everyone; whether the identity provider's sign-in is offered
# is filled in per request.
_PARTS = {"refresh_seconds": REFRESH_SECONDS, "status_cards": _status_cards(),
          "status_options": _status_options(), "series_head": _series_head()}


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
def dashboard(request: Request) -> HTMLResponse:
    # Its security headers (scripts and styles only from the api itself) are set with
    # every other response's, by relay_api.guard.
    return HTMLResponse(_PAGE.substitute(_PARTS, oidc=sign_on_offered(request)))


def sign_on_offered(request: Request) -> str:
    """"on" where the identity provider's sign-in is configured, for a page's data-oidc."""
    settings = request.app.state.runtime.settings
    return "on" if settings.oidc_issuer and settings.oidc_client_id else "off"


def static_files() -> StaticFiles:
    # An editable install (make setup) links each file into the package folder:
    # follow those links; the folder itself is the package's, never a user's.
    return StaticFiles(directory=str(resources.files("relay_api").joinpath("static")),
                       follow_symlink=True)
