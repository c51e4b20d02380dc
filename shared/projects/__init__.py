"""Research projects: the projects file (RELAY_PROJECTS), routing a series to its
project by how it arrived and by its header, and each project's de-identification
choices and named destinations. Without a file there is one implicit project,
`default`, built from the RELAY_* settings."""

from .config import (
    DEFAULT,
    DeidChoice,
    IdentifiersChoice,
    PixelsChoice,
    ProjectConfig,
    Projects,
    implicit_projects,
    load_projects,
    load_projects_file,
    parse_projects,
)
from .load import ProjectsError
from .registry import ProjectsRegistry
from .routing import Arrival, Decision, HeaderValues, Router
from .schema import Action, DestinationConfig, Dispatch, Source

__all__ = [
    "DEFAULT",
    "Action",
    "Arrival",
    "Decision",
    "DeidChoice",
    "DestinationConfig",
    "Dispatch",
    "HeaderValues",
    "IdentifiersChoice",
    "PixelsChoice",
    "ProjectConfig",
    "Projects",
    "ProjectsError",
    "ProjectsRegistry",
    "Router",
    "Source",
    "implicit_projects",
    "load_projects",
    "load_projects_file",
    "parse_projects",
]
