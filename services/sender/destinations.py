"""Where de-identified series go. Each destination sends and then proves receipt."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from relay_shared.reasons import RelayError


@dataclass(frozen=True)
class OutgoingInstance:
    image_id: int
    sop_instance_uid: str
    path: Path


@dataclass(frozen=True)
class OutgoingSeries:
    series_id: int
    study_instance_uid: str
    series_instance_uid: str
    instances: list[OutgoingInstance]


class DestinationError(RelayError):
    """A destination refused, lost or could not be reached; the attempt is retried."""

    code = "destination"


# PS3.5 9.1: components of digits without leading zeros, at most 64 characters.
# Paths, object names and URLs are built from values that pass this only, so a
# value read from a file can never nest, escape or rewrite a request.
_UID = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")
NOT_A_UID = "a UID of this image is not a valid UID: it cannot name a path or object"


class UnsafeName(DestinationError):
    """A value that would name a path, object or URL is not a UID."""


def valid_uid(value: str) -> bool:
    return len(value) <= 64 and _UID.fullmatch(value) is not None


def checked_uid(value: str) -> str:
    if not valid_uid(value):
        raise UnsafeName(NOT_A_UID)
    return value


class Destination(Protocol):
    name: str

    @property
    def sends_whole_series(self) -> bool:
        """True: every send carries the whole series, even on a retry after some of
        its images were confirmed."""

    def send(self, series: OutgoingSeries) -> None:
        """Store every instance; storing one that is already there is harmless."""

    def missing(self, series: OutgoingSeries) -> set[str]:
        """SOPInstanceUIDs of the series that the destination does not hold."""


class FolderDestination:
    """A local or mounted folder: <study>/<series>/<sop>.dcm, each written atomically."""

    name = "outbox"
    sends_whole_series = False

    def __init__(self, root: Path) -> None:
        self._root = root

    def _folder(self, series: OutgoingSeries) -> Path:
        """The series' folder, once per series: a folder of the outbox replaced by a link
        to elsewhere is refused here. Within it, a file's name is a UID (digits and
        dots) and is written by link and rename, which replace a link rather than
        follow it, so the files need no resolving of their own."""
        folder = self._root / checked_uid(series.study_instance_uid) / \
            checked_uid(series.series_instance_uid)
        if not folder.resolve().is_relative_to(self._root.resolve()):
            raise UnsafeName("an outbox path would leave the outbox")
        return folder

    @staticmethod
    def _file(folder: Path, sop_uid: str) -> Path:
        return folder / f"{checked_uid(sop_uid)}.dcm"

    def send(self, series: OutgoingSeries) -> None:
        folder = self._folder(series)
        folder.mkdir(parents=True, exist_ok=True)
        # Made now, it is checked again: a link put in its place in between is refused.
        folder = self._folder(series)
        for instance in series.instances:
            target = self._file(folder, instance.sop_instance_uid)
            partial = target.with_name(target.name + ".part")
            _link_or_copy(instance.path, partial)
            os.replace(partial, target)

    def missing(self, series: OutgoingSeries) -> set[str]:
        folder = self._folder(series)
        return {
            instance.sop_instance_uid for instance in series.instances
            if not _same_size(self._file(folder, instance.sop_instance_uid), instance.path)
        }

    def put_manifest(self, series: OutgoingSeries, name: str, content: bytes) -> str:
        """A file beside the series' instances (its signed manifest), written atomically."""
        target = self._folder(series) / name
        partial = target.with_name(name + ".part")
        partial.write_bytes(content)
        os.replace(partial, target)
        return str(target)


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link when the folder is on the work store's file system: no second
    copy of the bytes. The de-identified file is never written again in place (it is
    written whole and renamed over), and the sender then removes its working name, so
    the folder's file stays as sent. Elsewhere (another file system, one without
    links), a copy."""
    target.unlink(missing_ok=True)  # a .part left by a crash
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _same_size(copy: Path, original: Path) -> bool:
    try:
        # lstat: a link put in place of a sent file is not the file; it is sent again.
        return copy.lstat().st_size == original.stat().st_size
    except FileNotFoundError:
        return False
