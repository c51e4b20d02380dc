"""How a delivery arrived, kept beside its files so routing can use it after staging.

Whoever makes a delivery folder writes a small origin file into it: the SCP's
staging (with the calling AE title), the follower, the collector's C-GET. A
folder put into incoming by hand has none: its origin is `folder`, with the
subfolder of incoming it was put in (if any), written when it is claimed. The
file holds no patient data and is never taken for an instance.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

from relay_shared.projects import Arrival, Source

log = logging.getLogger(__name__)
ORIGIN_FILE = ".relay-origin.json"


def write_origin(folder: Path, arrival: Arrival, delivery: str | None = None) -> None:
    """``delivery``: the staged delivery this folder is (a part of a series, arrivals.py)."""
    data = {"source": arrival.source, "calling_ae": arrival.calling_ae,
            "incoming_subdir": arrival.incoming_subdir, "delivery": delivery}
    partial = folder / f"{ORIGIN_FILE}.part"
    partial.write_text(json.dumps(data), encoding="utf-8")
    os.replace(partial, folder / ORIGIN_FILE)


def read_origin(folder: Path) -> Arrival:
    """The recorded origin; a folder without one was put there by hand."""
    try:
        data = json.loads((folder / ORIGIN_FILE).read_text(encoding="utf-8"))
        return Arrival(Source(data["source"]).value, _text(data.get("calling_ae")),
                       _text(data.get("incoming_subdir")))
    except FileNotFoundError:
        return Arrival(Source.FOLDER.value)
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("unreadable origin file: the delivery is taken as a folder delivery",
                    extra={"delivery": folder.name})
        return Arrival(Source.FOLDER.value)


def read_staged_delivery(folder: Path) -> str | None:
    """The staged delivery the folder was, if the SCP made it."""
    try:
        data = json.loads((folder / ORIGIN_FILE).read_text(encoding="utf-8"))
        return _text(data.get("delivery"))
    except (OSError, ValueError, AttributeError):
        return None


def _text(value: object) -> str | None:
    return str(value).strip() or None if value is not None else None


def note_folder_origin(folder: Path, subdir: str | None) -> None:
    """Before a hand-made folder is claimed: its subfolder of incoming goes with it."""
    if subdir is None or (folder / ORIGIN_FILE).exists():
        return
    with contextlib.suppress(OSError):  # a folder we may not write to is still ingested
        write_origin(folder, Arrival(Source.FOLDER.value, incoming_subdir=subdir))


def is_origin_file(path: Path) -> bool:
    return path.name.startswith(ORIGIN_FILE)
