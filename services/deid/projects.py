"""Each project's de-identification: its options, recipe, key, identifiers service and
pixel rules, built once per version of the projects file and kept.

A series is de-identified with the project (and file version) it was routed by, so
the same patient gets one pseudonym space per project: distinct between two
projects, the same within one across series, processes and restarts.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlmodel import Session

from relay_deid.handlers import DeidContext, deidentify_series
from relay_deid.identifiers import RemoteIdentifiers
from relay_shared import tlsconfig
from relay_shared.db import session_scope
from relay_shared.deid import DeidConfig, Pseudonymizer
from relay_shared.models import Series, Stage
from relay_shared.pixels import PixelPolicy
from relay_shared.projects import ProjectConfig, ProjectsRegistry
from relay_shared.series_state import mark_failed
from relay_shared.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _PixelSettings:
    pixel_rules: Path | None
    pixel_ocr: bool
    pixel_ocr_off_modalities: list[str]
    pixel_ocr_any_text: bool


def project_context(base: DeidContext, project: ProjectConfig, settings: Settings
                    ) -> DeidContext:
    """`base` with everything the project chooses replaced."""
    deid = project.deid
    config = DeidConfig.from_settings(list(deid.options), str(deid.recipe) if deid.recipe
                                      else None, settings.deid_local_coding_schemes)
    identifiers = None
    if project.identifiers is not None:
        identifiers = RemoteIdentifiers(project.identifiers.url, deid.key_id,
                                        project.identifiers.timeout,
                                        token=project.identifiers.token,
                                        verify=tlsconfig.http_verify(settings))
    pixels = PixelPolicy.from_settings(_PixelSettings(
        project.pixels.rules, project.pixels.ocr, settings.pixel_ocr_off_modalities,
        settings.pixel_ocr_any_text))
    return replace(base, pseudonymizer=Pseudonymizer(deid.secret.encode(), deid.key_id),
                   config=config, identifiers=identifiers, pixels=pixels,
                   review=project.review)


@dataclass
class ProjectContexts:
    base: DeidContext
    registry: ProjectsRegistry
    settings: Settings
    _built: dict[tuple[str | None, str], DeidContext] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def for_series(self, series_id: int) -> DeidContext | None:
        with Session(self.base.engine) as session:
            series = session.get(Series, series_id)
            if series is None:
                return self.base  # nothing to do: the handler finds that out itself
            name, sha256 = series.project, series.projects_sha256
        found = self.registry.for_series(name, sha256)
        if found is None:
            return None
        version, project = found
        if version.implicit:
            return self.base  # no projects file: the relay's own settings, as always
        with self._lock:
            key = (version.sha256, project.name)
            if key not in self._built:
                self._built[key] = project_context(self.base, project, self.settings)
            return self._built[key]

    def deidentify(self, series_id: int) -> None:
        ctx = self.for_series(series_id)
        if ctx is None:
            _no_project(self.base, series_id)
            return
        deidentify_series(ctx, series_id)


def _no_project(ctx: DeidContext, series_id: int) -> None:
    """Its project was taken out of the file: a person decides (retry after fixing)."""
    with session_scope(ctx.engine) as session:
        series = session.get(Series, series_id)
        name = series.project if series else None
    mark_failed(ctx.engine, series_id, f"project {name} is not in the projects file in force",
                Stage.DEID)
    log.error("series of a project no longer configured", extra={"series_id": series_id,
                                                                 "project": name})
