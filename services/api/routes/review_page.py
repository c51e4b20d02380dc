"""The review pages: series under review, and learned pixel rules. Like the dashboard
they are public and hold no data: the browser signs in with a token or the hospital's
sign-on and reads the JSON API (static/review.js, static/pixel_rules.js)."""

from __future__ import annotations

from importlib import resources
from string import Template

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from relay_api.routes.dashboard import sign_on_offered

router = APIRouter(tags=["review"])


def _page(name: str) -> Template:
    return Template(resources.files("relay_api").joinpath(f"templates/{name}").read_text())


_REVIEW = _page("review.html")
_PIXEL_RULES = _page("pixel_rules.html")


@router.get("/review", response_class=HTMLResponse, include_in_schema=False)
def review_page(request: Request) -> HTMLResponse:
    # Security headers (scripts from the api itself, frames as blob: pictures) are set
    # by relay_api.guard with every other response's.
    return HTMLResponse(_REVIEW.substitute(oidc=sign_on_offered(request)))


@router.get("/review/pixel-rules", response_class=HTMLResponse, include_in_schema=False)
def pixel_rules_page(request: Request) -> HTMLResponse:
    return HTMLResponse(_PIXEL_RULES.substitute(oidc=sign_on_offered(request)))
