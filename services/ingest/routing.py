"""Routing a received series to its project, before anything else is done with it.

The conditions read the series' first file as it arrived (before
de-identification): only the attributes the projects name are read, pixels never.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.multival import MultiValue
from sqlmodel import Session, col, select

from relay_shared.metrics import SERIES_ROUTED
from relay_shared.models import Image, Series, Status, utcnow
from relay_shared.projects import Action, Arrival, HeaderValues, ProjectsRegistry, Source
from relay_shared.series_state import set_aside
from relay_shared.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Routed:
    project: str | None  # None: no project takes the series
    action: Action
    sha256: str | None  # the projects file version that decided
    source: str
    reason: str | None = None  # why it is dropped or held: project and conditions only


def header_values(path: Path, keywords: Iterable[str]) -> HeaderValues:
    """Each named attribute's values as text; a file that cannot be read gives none,
    so conditions on it fail rather than guess."""
    wanted = sorted(keywords)
    if not wanted:
        return {}
    try:
        dataset = dcmread(path, stop_before_pixels=True, specific_tags=wanted)
        values: dict[str, tuple[str, ...]] = {}
        for keyword in wanted:
            value = dataset.get(keyword)
            if value is None or value == "" or isinstance(value, bytes):
                continue
            items = value if isinstance(value, MultiValue | list) else [value]
            texts = tuple(str(v).strip() for v in items)
            if any(texts):
                values[keyword] = texts
        return values
    except Exception:  # whatever is wrong with the file, ingest records it on its own
        log.warning("series header unreadable for routing", extra={"file": path.name})
        return {}


class IngestRouter:
    def __init__(self, registry: ProjectsRegistry, settings: Settings) -> None:
        self._registry = registry
        # Retrievals by C-MOVE arrive over the SCP from the PACS the collector asks.
        self._pacs_ae = settings.pacs_ae_title if settings.pacs_host else None

    def incoming_subdirs(self) -> frozenset[str]:
        """Folders of incoming that hold deliveries rather than being one."""
        file = self._registry.current.file
        if file is None:
            return frozenset()
        return frozenset(s for p in file.projects for s in p.match.incoming_subdir or ())

    def route(self, arrival: Arrival, first_file: Path) -> Routed:
        projects = self._registry.current
        if arrival.source == Source.SCP and self._pacs_ae and arrival.calling_ae == self._pacs_ae:
            arrival = Arrival(Source.COLLECT.value, arrival.calling_ae, arrival.incoming_subdir)
        header = header_values(first_file, projects.router.keywords)
        name = projects.router.route(arrival, header)
        project = projects.project(name)
        if project is None:
            failed = projects.router.explain(arrival, header).failed
            routed = Routed(None, Action.DROP, projects.sha256, arrival.source,
                            "no project takes this series: " + "; ".join(
                                f"{p}: {condition} does not hold" for p, condition in failed))
        elif project.action is Action.SEND:
            routed = Routed(project.name, project.action, projects.sha256, arrival.source)
        else:
            held_by = "; ".join(projects.router.conditions(project.name)) or "every series"
            routed = Routed(project.name, project.action, projects.sha256, arrival.source,
                            f"project {project.name}: action {project.action.value} "
                            f"({held_by})")
        SERIES_ROUTED.labels(project=routed.project or "", action=routed.action.value).inc()
        return routed


def apply_route(session: Session, series: Series, routed: Routed | None,
                moves: list[tuple[Path, int]]) -> Action:
    """What to do with newly received instances of a series. A series is routed when it
    first arrives, and again if it had been dropped; after that it keeps its project,
    and new instances follow the series (held with it while it is held)."""
    if routed is None:
        return Action.SEND
    if series.project is None or series.status is Status.IGNORED:
        series.project, series.projects_sha256 = routed.project, routed.sha256
        series.source = routed.source
        action, reason = routed.action, routed.reason
    else:
        action = Action.HOLD if series.status is Status.HELD else Action.SEND
        reason = series.error
    if action is Action.DROP:
        set_aside(session, series, Status.IGNORED, reason, "ingest")
        image_ids = [image_id for _path, image_id in moves]
        for image in session.exec(select(Image).where(col(Image.id).in_(image_ids))):
            image.status, image.reason, image.updated_at = Status.IGNORED, reason, utcnow()
    elif action is Action.HOLD:
        set_aside(session, series, Status.HELD, reason, "ingest")
    return action
