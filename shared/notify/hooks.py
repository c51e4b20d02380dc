"""What a webhook is, the events it may ask for, and how its bodies are signed."""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum

from pydantic import BaseModel, Field

SIGNATURE_HEADER = "X-Relay-Signature"
TIMESTAMP_HEADER = "X-Relay-Timestamp"


class Event(StrEnum):
    SERIES_DONE = "series.done"
    SERIES_FAILED = "series.failed"
    SERIES_QUARANTINED = "series.quarantined"
    SERIES_HELD = "series.held"
    SERIES_REVIEW = "series.review"  # de-identified, waiting for a reviewer
    SERIES_IGNORED = "series.ignored"
    COLLECTION_FINISHED = "collection.finished"


def series_event(status: str) -> Event | None:
    """The event a series entering ``status`` raises, if any."""
    try:
        return Event(f"series.{status.lower()}")
    except ValueError:
        return None


class Webhook(BaseModel):
    """One receiver. Its secret is not here: it comes from RELAY_WEBHOOK_SECRET or, for
    this hook alone, from RELAY_WEBHOOK_SECRETS, so the list itself holds nothing secret."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    url: str = Field(pattern=r"^https?://[^\s]+$", max_length=2000)
    events: list[Event] = Field(default_factory=lambda: list(Event), min_length=1)


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 over "<timestamp>.<body>". Signing the time with the
    body lets a receiver refuse an old request replayed with its valid signature."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"
