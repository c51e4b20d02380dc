"""Transfer syntax lists as configured for a destination (`transfer_syntax`)."""

from __future__ import annotations

from collections.abc import Iterable

from pydicom.uid import UID


def check_transfer_syntaxes(values: Iterable[str]) -> list[str]:
    """Transfer syntax UIDs in order of preference, each once; an error names the value."""
    listed = [value.strip() for value in values]
    if not listed:
        raise ValueError("lists no transfer syntax")
    for value in listed:
        if not UID(value).is_transfer_syntax:
            raise ValueError(f"{value} is not a transfer syntax UID")
    if len(set(listed)) != len(listed):
        raise ValueError("a transfer syntax is listed twice")
    return listed
