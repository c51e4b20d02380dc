"""Who may read what the relay writes: the service's own user, or also its group.

Originals, staged and quarantined files and the SQLite database hold patient data.
Each process sets its umask at start, so that every file and folder it creates is
private (0600/0700), or group-only (0660/0770) with RELAY_SHARED_GROUP_ACCESS, for
a volume shared between pods that run as different users of one group. A file that
arrives from elsewhere (a folder delivery keeps the mode its writer gave it) gets
the same mode when it is taken into the work store or quarantine.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from relay_shared.settings import Settings

PRIVATE_UMASK = 0o077
GROUP_UMASK = 0o007
_file_mode = 0o666 & ~PRIVATE_UMASK
_dir_mode = 0o777 & ~PRIVATE_UMASK
SQLITE_PREFIX = "sqlite:///"


def restrict(shared_group_access: bool) -> None:
    """Set this process's umask (once, at start: it is process-wide)."""
    global _file_mode, _dir_mode  # as process-wide as the umask itself
    mask = GROUP_UMASK if shared_group_access else PRIVATE_UMASK
    os.umask(mask)
    _file_mode, _dir_mode = 0o666 & ~mask, 0o777 & ~mask


def file_mode() -> int:
    return _file_mode


def take(path: Path) -> None:
    """Give a file taken in from elsewhere the mode of the relay's own files."""
    os.chmod(path, _file_mode)


def tighten_dirs(*folders: Path | None) -> None:
    """Folders made by an earlier version, or before the umask was set, lose the
    access the umask would not have given them."""
    for folder in folders:
        if folder is not None and folder.is_dir():
            with contextlib.suppress(PermissionError):  # a mount point the relay does not own
                os.chmod(folder, os.stat(folder).st_mode & _dir_mode & 0o7777)


def secure(settings: Settings) -> None:
    """At a service's start: the umask, the folders of patient data and the database."""
    restrict(settings.shared_group_access)
    tighten_dirs(settings.work_dir, settings.quarantine_dir, settings.staging_dir)
    url = settings.sqlalchemy_url
    if url.startswith(SQLITE_PREFIX):
        database = Path(url.removeprefix(SQLITE_PREFIX))
        for path in (database, *database.parent.glob(f"{database.name}-*")):  # -wal, -shm
            with contextlib.suppress(FileNotFoundError):
                os.chmod(path, _file_mode)
