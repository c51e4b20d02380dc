"""Reasons people and other services may read: fixed phrases, never a value from a file.

A reason ends up in `Image.reason`, `Series.error`, API responses, the AMQP
`x-relay-error` header, log lines and metric labels, all of which a reader or
an operator sees. A parser's or a library's exception text can quote the file
(pydicom's "Invalid value for VR UI: '1.2.3...'") or carry hints meant for a
programmer ("Use force=True"). So an exception's text is never a reason: only
a `RelayError`, whose text the relay's own code wrote from constants, element
tags, counts and internal ids, passes through. Anything else becomes its type
name; its text goes to the PHI debug log only (see `relay_shared.logs`).
"""

from __future__ import annotations

import errno
import logging
import os

# Off unless RELAY_LOG_PHI_DEBUG is set: its lines may quote patient data.
phi_log = logging.getLogger("relay.phi")


class RelayError(Exception):
    """An error whose message the relay wrote itself: tags, counts, ids, no file values.

    `code` is a short, bounded name for metric labels."""

    code = "error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def reason_of(exc: BaseException) -> str:
    """What may be shown about `exc` to anyone: its reason if the relay wrote it,
    else only its type; for an operating-system error also its errno, whose text is
    the C library's (a full disk must be told from a permission problem), never the
    file name, which can carry a patient's name."""
    if isinstance(exc, RelayError):
        return exc.reason
    number = exc.errno if isinstance(exc, OSError) else None
    if number is not None and number in errno.errorcode:
        return (f"{type(exc).__name__} {errno.errorcode[number]}: {os.strerror(number)} "
                "(details only in the PHI debug log)")
    return f"{type(exc).__name__} (details only in the PHI debug log)"


def code_of(exc: BaseException) -> str:
    return exc.code if isinstance(exc, RelayError) else type(exc).__name__.lower()


def keep_text(exc: BaseException, where: str) -> None:
    """Keep an exception's own text where only someone allowed to see PHI looks."""
    if phi_log.isEnabledFor(logging.DEBUG):
        phi_log.debug("%s: %s: %s", where, type(exc).__name__, exc)


def described(what: str, exc: BaseException) -> str:
    """`what` went wrong, with the safe part of why."""
    keep_text(exc, what)
    return f"{what}: {reason_of(exc)}"

