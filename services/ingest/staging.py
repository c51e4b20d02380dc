"""Instances received over the network, gathered per series until the series is stable.

Each received instance is written whole (under a partial name, then renamed) into
the staged delivery of its series, one folder per series. A delivery closes once
nothing has arrived for it for the stable age (as Orthanc's StableAge does), and
is renamed into the incoming folder as a finished folder: from there it takes the
same path as a folder delivery, duplicate merging included. An instance arriving
after its series closed opens a new staged delivery of that series.

The receiving threads write straight into the delivery folder (a file costs one
create and one rename, which on some disks is most of what receiving costs), so
the bookkeeping is shared under a lock: a delivery with a write in progress is
never closed under that write.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import logging
import os
import secrets
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from relay_ingest.arrivals import OpenPart
from relay_ingest.origin import OriginSeal, is_origin_file, write_origin
from relay_shared.projects import Arrival, Source

log = logging.getLogger(__name__)
PARTIAL_SUFFIX = ".part"
# A delivery folder made here; the same name in incoming and, with a suffix, once claimed.
DELIVERY_PREFIX = "scp-"
SPOOL_FOLDER = ".receiving"


# Names are keyed, so a name in a log or a directory listing cannot be matched to a known
# UID. The key comes from the relay's secret (key_names_with): every SCP process sharing
# the volume, and this one after a restart, names an instance alike, so a storage
# commitment request that reaches another replica, or comes after a restart, still finds
# the instance on its way. Until then (tools, tests) a key of this process alone.
NAME_CONTEXT = b"relay staging names v1"
_name_key = secrets.token_bytes(32)


def key_names_with(secret: bytes) -> None:
    """Called once as the service starts, before anything is staged."""
    global _name_key
    _name_key = hmac.new(secret, NAME_CONTEXT, hashlib.sha256).digest()


def uid_key(uid: str) -> str:
    """A folder or file name for a UID that does not show the UID, nor let anyone
    holding a list of UIDs find it (an unkeyed hash would)."""
    return hmac.new(_name_key, uid.encode(), hashlib.sha256).hexdigest()[:24]


@dataclass
class _OpenDelivery:
    folder: Path
    last_arrival: float
    instances: int = 0
    writing: int = 0
    arrived: bool = True  # since the last look of open_parts()


# Given the series (as received) quiet here, those that may close: quiet everywhere.
MayClose = Callable[[list[str]], set[str]]


class Staging:
    def __init__(self, staging_dir: Path, incoming_dir: Path, stable_age: float,
                 sealer: OriginSeal, clock: Callable[[], float] = time.monotonic) -> None:
        self._sealer = sealer
        self._staging_dir = staging_dir
        self._incoming_dir = incoming_dir
        self._stable_age = stable_age
        self._clock = clock
        self._open: dict[str, _OpenDelivery] = {}
        self._lock = threading.Lock()

    @property
    def open_series(self) -> int:
        with self._lock:
            return len(self._open)

    @property
    def spool_dir(self) -> Path:
        """Where data sets are written as they arrive: on the staging disk, so that
        filing one is a rename; a dot folder, so recovery does not take it for a delivery."""
        return self._staging_dir / SPOOL_FOLDER

    def store(self, series_uid: str, sop_instance_uid: str, *parts: bytes,
              calling_ae: str | None = None) -> Path:
        """Write one instance into the open delivery of its series; safe from any thread.
        The delivery records the calling AE of its first instance, for routing."""
        return self._put(series_uid, calling_ae,
                         lambda folder: write_instance(folder, sop_instance_uid, *parts))

    def store_file(self, series_uid: str, sop_instance_uid: str, source: Path,
                   calling_ae: str | None = None) -> Path:
        """Move a whole received file (on the staging disk) into its series' delivery."""
        return self._put(series_uid, calling_ae,
                         lambda folder: move_instance(folder, sop_instance_uid, source))

    def _put(self, series_uid: str, calling_ae: str | None,
             put: Callable[[Path], Path]) -> Path:
        with self._lock:
            delivery = self._open.get(series_uid)
            if delivery is None:
                name = f"{DELIVERY_PREFIX}{uid_key(series_uid)}-{uuid.uuid4().hex[:8]}"
                folder = self._staging_dir / name
                folder.mkdir(parents=True)
                write_origin(folder, Arrival(Source.SCP.value, calling_ae=calling_ae),
                             self._sealer, delivery=folder.name)
                delivery = self._open[series_uid] = _OpenDelivery(folder, self._clock())
            delivery.writing += 1
        try:
            path = put(delivery.folder)
        except BaseException:
            with self._lock:
                delivery.writing -= 1
            raise
        with self._lock:
            delivery.writing -= 1
            delivery.last_arrival = self._clock()
            delivery.instances += 1
            delivery.arrived = True
        return path

    def open_parts(self) -> list[OpenPart]:
        """The deliveries open here, each saying whether an instance arrived since the
        last call (for the other SCP processes, see arrivals.py)."""
        with self._lock:
            parts = [OpenPart(d.folder.name, uid, d.arrived) for uid, d in self._open.items()]
            for delivery in self._open.values():
                delivery.arrived = False
        return parts

    def _stable(self) -> list[str]:
        now = self._clock()
        return [uid for uid, d in self._open.items()
                if not d.writing and now - d.last_arrival >= self._stable_age]

    def close_stable(self, may_close: MayClose | None = None) -> list[Path]:
        """Hand every series that has been quiet for the stable age over to ingest;
        with ``may_close``, only those it allows (asked without holding the lock)."""
        with self._lock:
            stable = self._stable()
        allowed = set(stable) if may_close is None or not stable else may_close(stable)
        with self._lock:
            # An instance may have arrived while asking: still stable, or left open.
            closing = [self._open.pop(uid) for uid in self._stable() if uid in allowed]
        handed = []
        for delivery in closing:
            target = hand_over(delivery.folder, self._incoming_dir)
            if target is not None:
                handed.append(target)
                log.info("received series closed", extra={
                    "delivery": target.name, "instances": delivery.instances})
        return handed

    def close_all(self) -> list[Path]:
        """At shutdown: what has arrived whole is handed over rather than kept waiting."""
        self._stable_age = 0.0
        return self.close_stable()


def hand_over(folder: Path, incoming_dir: Path) -> Path | None:
    """Rename a staged folder into incoming (same filesystem, so atomic); drop it if empty."""
    if not folder.is_dir():
        return None
    for partial in folder.glob(f"*{PARTIAL_SUFFIX}"):
        partial.unlink(missing_ok=True)  # a write that never finished was never acknowledged
    if not any(not is_origin_file(p) for p in folder.iterdir()):
        shutil.rmtree(folder)
        return None
    incoming_dir.mkdir(parents=True, exist_ok=True)
    target = incoming_dir / folder.name
    os.rename(folder, target)
    return target


def recover(staging_dir: Path, incoming_dir: Path) -> list[Path]:
    """Deliveries staged by a process that stopped: every whole file in them was
    acknowledged to its sender, so they are handed over as they are."""
    if not staging_dir.is_dir():
        return []
    handed = [hand_over(folder, incoming_dir) for folder in sorted(staging_dir.iterdir())
              if folder.is_dir() and folder.name != SPOOL_FOLDER
              and not folder.name.startswith(AREA_PREFIX)]
    return [path for path in handed if path is not None]


# SCP processes sharing the data volume each stage into an area of their own, so that
# one starting never hands over, nor clears the spool of, another one's open series.
AREA_PREFIX = "process-"


def process_area(staging_dir: Path, process_name: str) -> Path:
    return staging_dir / (AREA_PREFIX + "".join(c if c.isalnum() or c in "-." else "_"
                                                for c in process_name))


def recover_areas(staging_dir: Path, incoming_dir: Path, alive: Callable[[str], bool]
                  ) -> list[Path]:
    """The deliveries of every area whose process is gone (``alive`` says, by the
    area's name), and those staged before areas were, handed over; the areas removed."""
    handed = recover(staging_dir, incoming_dir)
    if not staging_dir.is_dir():
        return handed
    for area in sorted(staging_dir.iterdir()):
        if area.is_dir() and area.name.startswith(AREA_PREFIX) and not alive(area.name):
            handed += recover(area, incoming_dir)
            shutil.rmtree(area, ignore_errors=True)  # its spool: never acknowledged
    return handed


def write_instance(folder: Path, sop_instance_uid: str, *parts: bytes) -> Path:
    """Write the bytes as received, under a temporary name first so no half file is seen.
    Two associations may carry the same instance at once: each copy has its own name.
    Called once per received instance, so it avoids per-call costs that add up (a
    fresh UUID, a mkdir) and only creates the folder when it turns out to be missing."""
    target = _instance_path(folder, sop_instance_uid)
    partial = target + PARTIAL_SUFFIX
    try:
        descriptor = os.open(partial, _WRITE_FLAGS, 0o660)
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
        descriptor = os.open(partial, _WRITE_FLAGS, 0o660)
    try:
        with open(descriptor, "wb", closefd=True) as stream:
            for part in parts:
                stream.write(part)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    os.replace(partial, target)
    return Path(target)


def move_instance(folder: Path, sop_instance_uid: str, source: Path) -> Path:
    """File a whole received file under its instance's name: a rename, never a copy."""
    target = _instance_path(folder, sop_instance_uid)
    try:
        os.rename(source, target)
    except FileNotFoundError:
        if not source.exists():
            raise
        os.makedirs(folder, exist_ok=True)
        os.rename(source, target)
    return Path(target)


def _instance_path(folder: Path, sop_instance_uid: str) -> str:
    return os.path.join(folder, f"{uid_key(sop_instance_uid)}-{_NAME_PREFIX}{next(_names):x}.dcm")


_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL
# Unique across processes sharing a staging folder (random prefix) and within one
# (the counter: next() on itertools.count is atomic under the GIL).
_NAME_PREFIX = uuid.uuid4().hex[:6]
_names = itertools.count()
