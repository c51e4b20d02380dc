"""Presentation contexts that follow a destination's transfer_syntax list, and the
file to send once the AE has said which of them it accepts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from relay_sender.destinations import OutgoingInstance

# Gives a file of the instance in one of the syntaxes accepted for its SOP class.
Refit = Callable[[OutgoingInstance, list[str]], Path]


def requested_contexts(pairs: list[tuple[str, str]], preferred: list[str]
                       ) -> list[tuple[str, str]]:
    """One context per (SOP class, transfer syntax): each file's own, and with a list,
    every syntax of it for each SOP class, in the list's order, so that the AE answers
    for each and the association holds the syntaxes the destination asked for."""
    if not preferred:
        return pairs
    classes = dict.fromkeys(sop for sop, _syntax in pairs)
    wanted = [(sop, syntax) for sop in classes for syntax in preferred]
    return wanted + [pair for pair in pairs if pair not in wanted]


def accepted_file(instance: OutgoingInstance, sop_class: str, syntax: str,
                  accepted: dict[tuple[str, str], int], refit: Refit | None) -> Path:
    """The instance's file when the AE accepted its syntax; else, with a transfer_syntax
    list, a copy in the first listed syntax the AE accepted for its SOP class."""
    if refit is None or (sop_class, syntax) in accepted:
        return instance.path
    return refit(instance, [ts for sop, ts in accepted if sop == sop_class])
