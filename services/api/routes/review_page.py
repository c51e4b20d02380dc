"""The review pages: series under review, and learned pixel rules. Like the dashboard
they are public and hold no data: the browser signs in with a token and reads the JSON
API with it (static/review.js, static/pixel_rules.js)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["review"])


def _page(name: str) -> str:
    return resources.files("relay_api").joinpath(f"templates/{name}").read_text()


_REVIEW = _page("review.html")
_PIXEL_RULES = _page("pixel_rules.html")


@router.get("/review", response_class=HTMLResponse, include_in_schema=False)
def review_page() -> HTMLResponse:
    # Security headers (scripts from the api itself, frames as blob: pictures) are set
    # by relay_api.guard with every other response's.
    return HTMLResponse(_REVIEW)


@router.get("/review/pixel-rules", response_class=HTMLResponse, include_in_schema=False)
def pixel_rules_page() -> HTMLResponse:
    return HTMLResponse(_PIXEL_RULES)
