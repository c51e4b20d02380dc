"""States in plain words, as the console shows them to people.

The status names (NEW, DONEPROCESSING, ...) are the API's contract with its
clients and stay as they are; these words are what a person reads beside
them. A failure also gets a short reason code (``stage.outcome``) to group
and search by: both are built from the status, the stage and the burned-in
text gate's verdict only, never from a value of a file.
"""

from __future__ import annotations

from relay_shared.models import Stage, Status

# One or two words a status card or a filter shows.
STATUS_WORDS: dict[Status, str] = {
    Status.NEW: "New",
    Status.PROCESSING: "Processing",
    Status.DONEPROCESSING: "De-identified",
    Status.SENT: "Sent",
    Status.DONE: "Done",
    Status.FAILED: "Failed",
    Status.QUARANTINED: "Quarantined",
    Status.HELD: "Held by project",
    Status.IGNORED: "Dropped",
    Status.REVIEW: "Waiting for review",
}

_STAGE_WORDS = {Stage.INGEST: "on arrival", Stage.DEID: "while de-identifying",
                Stage.SEND: "while sending"}
_SERIES_WORDS = {
    Status.NEW: "Waiting to be de-identified",
    Status.PROCESSING: "Processing",
    Status.DONEPROCESSING: "De-identified, waiting to be sent",
    Status.SENT: "Sent, waiting for the destination to confirm",
    Status.DONE: "Done",
    Status.QUARANTINED: "Quarantined — not sent",
    Status.HELD: "Held by its project for a person to release or drop",
    Status.IGNORED: "Dropped — sent nowhere",
    Status.REVIEW: "De-identified, waiting for a reviewer to approve or reject it",
}
_IMAGE_WORDS = {
    **_SERIES_WORDS,
    Status.NEW: "Waiting",
    Status.FAILED: "Failed — will not retry",
    Status.QUARANTINED: "Quarantined — not sent",
}
HELD_FOR_TEXT = "Held for review of burned-in text"
# What the stages write in Series.error while a later attempt is still to come.
_RETRYING_PREFIX = "attempt "


def series_words(status: Status, stage: Stage, error: str | None, unsent_images: int = 0
                 ) -> str:
    """`unsent_images`: images of the series that failed or are quarantined or held."""
    if status is Status.DONE and unsent_images:
        return f"Done — {unsent_images} image(s) not sent"
    if status is Status.FAILED:
        # Ingest made nothing to retry; the other stages wait for a person's retry.
        tail = "cannot be retried" if stage is Stage.INGEST else "will not retry by itself"
        return f"Failed {_STAGE_WORDS[stage]} — {tail}"
    if status is Status.PROCESSING and error and error.startswith(_RETRYING_PREFIX):
        return "Processing — an attempt failed, will retry"
    return _SERIES_WORDS.get(status) or _fallback(status)


def image_words(status: Status, pixel_gate: str | None) -> str:
    if status is Status.QUARANTINED and pixel_gate == "held":
        return HELD_FOR_TEXT
    if status is Status.QUARANTINED and pixel_gate == "dropped":
        return "Dropped after review of burned-in text — never sent"
    return _IMAGE_WORDS.get(status) or _fallback(status)


def _fallback(status: Status) -> str:
    """A status added without its words still reads as a word, not as an error page
    (tests/services/api/test_console_api.py asks for words for every status)."""
    return STATUS_WORDS.get(status) or status.value.capitalize()


def failure_code(status: Status, stage: Stage | None, pixel_gate: str | None = None) -> str:
    """A short, bounded code for a failure: `send.failed`, `deid.quarantined`,
    `image.burned_in_text`, ..."""
    if status is Status.QUARANTINED and pixel_gate == "held":
        return "image.burned_in_text"
    if stage is None:
        return f"image.{status.value.lower()}"
    if status in (Status.FAILED, Status.QUARANTINED):
        return f"{stage.value}.{status.value.lower()}"
    return "series.images_not_sent"  # the series went on without some of its images
