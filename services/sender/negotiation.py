"""Presentation contexts that follow a destination's transfer_syntax list."""

from __future__ import annotations


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
