"""How a delivery arrived, kept beside its files so routing can use it after staging.

Whoever makes a delivery folder writes a small origin file into it: the SCP's
staging (with the calling AE title), the follower, the collector's C-GET. A
folder put into incoming by hand has none: its origin is `folder`, with the
subfolder of incoming it was put in (if any), written when it is claimed. The
file holds no patient data and is never taken for an instance.

Routing trusts the file, so whoever can put a folder into incoming could write one
claiming the SCP and a calling AE whose project de-identifies differently. Each file
is therefore sealed with a key only the relay holds (derived from RELAY_DEID_SECRET);
a file without a valid seal is ignored, and the folder is a folder delivery.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
from pathlib import Path
from typing import Protocol

from pydantic import SecretStr

from relay_shared.projects import Arrival, Source

log = logging.getLogger(__name__)
ORIGIN_FILE = ".relay-origin.json"
SEAL_CONTEXT = b"relay origin seal v1"


class HasDeidSecret(Protocol):
    @property
    def deid_secret(self) -> SecretStr: ...


class OriginSeal:
    """Signs and checks origin files. A key of its own, derived from the secret, so a
    seal tells nothing about the key that makes pseudonyms."""

    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, SEAL_CONTEXT, hashlib.sha256).digest()

    @classmethod
    def of(cls, settings: HasDeidSecret) -> OriginSeal:
        return cls(settings.deid_secret.get_secret_value().encode())

    def seal(self, fields: dict[str, str | None]) -> str:
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hmac.new(self._key, canonical.encode(), hashlib.sha256).hexdigest()

    def holds(self, fields: dict[str, str | None], seal: object) -> bool:
        return isinstance(seal, str) and hmac.compare_digest(self.seal(fields), seal)


def write_origin(folder: Path, arrival: Arrival, sealer: OriginSeal,
                 delivery: str | None = None) -> None:
    """``delivery``: the staged delivery this folder is (a part of a series, arrivals.py)."""
    fields = _fields(arrival, delivery)
    partial = folder / f"{ORIGIN_FILE}.part"
    partial.write_text(json.dumps({**fields, "seal": sealer.seal(fields)}), encoding="utf-8")
    os.replace(partial, folder / ORIGIN_FILE)


def _fields(arrival: Arrival, delivery: str | None) -> dict[str, str | None]:
    return {"source": arrival.source, "calling_ae": arrival.calling_ae,
            "incoming_subdir": arrival.incoming_subdir, "delivery": delivery}


def read_origin(folder: Path, sealer: OriginSeal) -> Arrival:
    """The recorded origin; a folder without one (or with one the relay did not seal)
    was put there by hand."""
    try:
        return _sealed_origin(folder, sealer)[0]
    except FileNotFoundError:
        return Arrival(Source.FOLDER.value)
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("origin file unreadable or not sealed by this relay: the delivery is "
                    "taken as a folder delivery", extra={"delivery": folder.name})
        return Arrival(Source.FOLDER.value)


def read_staged_delivery(folder: Path, sealer: OriginSeal) -> str | None:
    """The staged delivery the folder was, if the SCP made it (and sealed it)."""
    try:
        return _sealed_origin(folder, sealer)[1]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _sealed_origin(folder: Path, sealer: OriginSeal) -> tuple[Arrival, str | None]:
    data = json.loads((folder / ORIGIN_FILE).read_text(encoding="utf-8"))
    arrival = Arrival(Source(data["source"]).value, _text(data.get("calling_ae")),
                      _text(data.get("incoming_subdir")))
    delivery = _text(data.get("delivery"))
    if not sealer.holds(_fields(arrival, delivery), data.get("seal")):
        raise ValueError("origin not sealed by this relay")
    return arrival, delivery


def _text(value: object) -> str | None:
    return str(value).strip() or None if value is not None else None


def note_folder_origin(folder: Path, subdir: str | None, sealer: OriginSeal) -> None:
    """Before a hand-made folder is claimed: its subfolder of incoming goes with it. An
    origin file the relay sealed (the SCP's, a pull's) is kept; any other is replaced
    by what the relay itself saw."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        _sealed_origin(folder, sealer)
        return
    with contextlib.suppress(OSError):  # a folder we may not write to is still ingested
        if subdir is not None:
            write_origin(folder, Arrival(Source.FOLDER.value, incoming_subdir=subdir), sealer)
        else:
            (folder / ORIGIN_FILE).unlink(missing_ok=True)


def is_origin_file(path: Path) -> bool:
    return path.name.startswith(ORIGIN_FILE)
