"""The projects in force in one process, reread when the file changes or on SIGHUP.

A series records the name of its project and the hash of the file version that
routed it. The services keep every version they have loaded (the last few), so
a series in flight when the file changes is de-identified and sent by the
version that routed it. A process that never loaded that version (it started
after the change) uses the project of the same name in the version in force,
and says so in its log. A file that does not validate is refused: the version
in force stays, with an error log and the `refused` count of the reload metric.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from relay_shared.metrics import PROJECTS_RELOADS

from .config import ProjectConfig, Projects, load_projects
from .load import ProjectsError

if TYPE_CHECKING:
    from relay_shared.settings import Settings

log = logging.getLogger(__name__)
KEPT_VERSIONS = 16
# Told of each reread that changed something or was refused: (applied, sha256 of the
# file read, what happened); the audit trail records configuration changes with it.
OnReload = Callable[[bool, str | None, str], None]
WATCH_INTERVAL = 2.0  # a change is in force within this, well inside five seconds


class ProjectsRegistry:
    def __init__(self, settings: Settings, initial: Projects | None = None) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._versions: OrderedDict[str | None, Projects] = OrderedDict()
        self._stamp = self._file_stamp()
        self._install(initial or load_projects(settings))
        self.on_reload: OnReload | None = None

    @property
    def current(self) -> Projects:
        return self._current

    def _install(self, projects: Projects) -> None:
        with self._lock:
            self._versions[projects.sha256] = projects
            self._versions.move_to_end(projects.sha256)
            while len(self._versions) > KEPT_VERSIONS:
                self._versions.popitem(last=False)
            self._current = projects

    def _file_stamp(self) -> tuple[int, int] | None:
        path = self._settings.projects
        if path is None:
            return None
        try:
            stat = path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def reload(self) -> bool:
        """Reread the file; True if a new version is now in force."""
        if self._settings.projects is None:
            return False
        self._stamp = self._file_stamp()
        try:
            projects = load_projects(self._settings)
        except ProjectsError as exc:
            PROJECTS_RELOADS.labels(result="refused").inc()
            log.error("projects file refused, the previous version stays in force",
                      extra={"problems": exc.problems, "in_force": self._current.sha256})
            self._tell(False, None, f"projects file refused ({len(exc.problems)} problem(s)); "
                       f"version {self._current.sha256} stays in force")
            return False
        if projects.sha256 == self._current.sha256:
            return False
        self._install(projects)
        PROJECTS_RELOADS.labels(result="applied").inc()
        log.info("projects file reloaded", extra={"sha256": projects.sha256,
                                                  "projects": list(projects.projects)})
        self._tell(True, projects.sha256, f"projects file version {projects.sha256} in force: "
                   f"{', '.join(projects.projects)}")
        return True

    def _tell(self, applied: bool, sha256: str | None, what: str) -> None:
        if self.on_reload is None:
            return
        try:
            self.on_reload(applied, sha256, what)
        except Exception:  # the trail's trouble must not undo the reload
            log.exception("could not record the projects reload in the audit trail")

    def reload_if_changed(self) -> bool:
        if self._settings.projects is None or self._file_stamp() == self._stamp:
            return False
        return self.reload()

    def version(self, sha256: str | None) -> Projects | None:
        with self._lock:
            return self._versions.get(sha256)

    def for_series(self, name: str | None, sha256: str | None
                   ) -> tuple[Projects, ProjectConfig] | None:
        """The project a series was routed to, in the version that routed it if known."""
        version = self.version(sha256)
        if version is None and sha256 != self._current.sha256:
            self.reload_if_changed()  # routed by a version this process has not read yet
            version = self.version(sha256)
        if version is None:
            version = self._current
            log.warning("series routed by a version of the projects file not loaded here: "
                        "using the project of that name in force",
                        extra={"project": name, "routed_by": sha256,
                               "in_force": version.sha256})
        if name is None and version.implicit:
            name = next(iter(version.projects))  # a series from before projects existed
        project = version.project(name)
        return (version, project) if project is not None else None

    async def watch(self, stop: asyncio.Event) -> None:
        """Reread on SIGHUP and whenever the file changes, until stopped."""
        if self._settings.projects is None:
            await stop.wait()  # a task that ended early would stop the whole process
            return
        hangup = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, hangup.set)
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_first(stop, hangup), WATCH_INTERVAL)
                if stop.is_set():
                    break
                if hangup.is_set():
                    hangup.clear()
                    await asyncio.to_thread(self.reload)
                else:
                    await asyncio.to_thread(self.reload_if_changed)
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGHUP)


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
