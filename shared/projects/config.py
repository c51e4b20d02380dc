"""The projects in force: read from RELAY_PROJECTS, or the one implicit project
`default` built from the RELAY_* settings (the relay as it was before projects).

A project's choices are complete here: what it leaves out of `deid`, `pixels`
or `identifiers` is filled in from the settings, so the services never look in
two places.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from relay_shared.review import ReviewChoice

from .load import ProjectsError, cross_check, digest, parse, resolve_path
from .routing import Router
from .schema import Action, DestinationConfig, Dispatch, Match, Project, ProjectsFile

if TYPE_CHECKING:
    from relay_shared.settings import Settings

DEFAULT = "default"


@dataclass(frozen=True)
class DeidChoice:
    options: tuple[str, ...]
    recipe: Path | None
    key_id: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class IdentifiersChoice:
    url: str
    token: str | None = field(repr=False)
    timeout: float


@dataclass(frozen=True)
class PixelsChoice:
    rules: Path | None
    ocr: bool


@dataclass(frozen=True)
class ProjectConfig:
    name: str
    action: Action
    dispatch: Dispatch
    destinations: tuple[str, ...]
    deid: DeidChoice
    identifiers: IdentifiersChoice | None
    pixels: PixelsChoice
    review: ReviewChoice = field(default_factory=ReviewChoice)


@dataclass(frozen=True)
class Projects:
    """One version of the configuration. `sha256` names it: a series records the
    version it was routed by (None for the implicit project)."""

    sha256: str | None
    source: str
    projects: dict[str, ProjectConfig]
    router: Router
    # Named destinations of the file; empty for the implicit project, whose
    # destinations are the RELAY_DESTINATIONS kinds, built from the settings.
    destinations: dict[str, DestinationConfig] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    file: ProjectsFile | None = field(default=None, repr=False)

    @property
    def implicit(self) -> bool:
        return self.file is None

    def project(self, name: str | None) -> ProjectConfig | None:
        return self.projects.get(name) if name else None

    def secret(self, reference: str | None) -> str | None:
        return self.secrets.get(reference) if reference else None


def _deid_choice(project: Project, settings: Settings, secrets: dict[str, str],
                 base: Path) -> DeidChoice:
    section = project.deid
    options = settings.deid_options if section is None or section.options is None \
        else section.options
    recipe = settings.deid_recipe
    if section is not None and section.recipe is not None:
        recipe = resolve_path(section.recipe, base)
    key_id = section.key_id if section and section.key_id else settings.deid_key_id
    secret = secrets[section.secret_env] if section and section.secret_env \
        else settings.deid_secret.get_secret_value()
    return DeidChoice(tuple(options), recipe, key_id, secret)


def _identifiers_choice(project: Project, settings: Settings, secrets: dict[str, str]
                        ) -> IdentifiersChoice | None:
    section = project.identifiers
    if section is not None:
        token = secrets.get(section.token_env) if section.token_env else None
        return IdentifiersChoice(section.url, token, section.timeout)
    if settings.identifiers_url:
        token = settings.identifiers_token.get_secret_value() if settings.identifiers_token \
            else None
        return IdentifiersChoice(settings.identifiers_url, token, settings.identifiers_timeout)
    return None


def _pixels_choice(project: Project, settings: Settings, base: Path) -> PixelsChoice:
    section = project.pixels
    rules = settings.pixel_rules
    if section is not None and section.rules is not None:
        rules = resolve_path(section.rules, base)
    ocr = section.ocr if section is not None and section.ocr is not None else settings.pixel_ocr
    return PixelsChoice(rules, ocr)


def _review_choice(project: Project, settings: Settings) -> ReviewChoice:
    section = project.review
    if section is not None:
        return ReviewChoice(section.mode, section.one_in)
    return ReviewChoice(settings.review_mode, settings.review_one_in)


def _resolve(project: Project, settings: Settings, secrets: dict[str, str],
             base: Path) -> ProjectConfig:
    return ProjectConfig(project.name, project.action, project.dispatch,
                         tuple(project.destinations),
                         _deid_choice(project, settings, secrets, base),
                         _identifiers_choice(project, settings, secrets),
                         _pixels_choice(project, settings, base),
                         _review_choice(project, settings))


def parse_projects(text: str, source: str, settings: Settings, base: Path) -> Projects:
    """Check the whole file (schema, references, secrets, recipes) and resolve it."""
    file, lines = parse(text, source)
    secrets, problems = cross_check(file, lines, source, base,
                                    os.environ.get("RELAY_SECRETS_DIR"))
    if problems:
        raise ProjectsError(problems)
    projects = {p.name: _resolve(p, settings, secrets, base) for p in file.projects}
    return Projects(digest(text), source, projects, Router(file.projects),
                    dict(file.destinations), secrets, file)


def load_projects_file(path: Path, settings: Settings) -> Projects:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectsError([f"{path}:1: cannot be read ({type(exc).__name__})"]) from None
    return parse_projects(text, str(path), settings, path.resolve().parent)


def implicit_projects(settings: Settings) -> Projects:
    """No projects file: one project takes every series, as the relay did before."""
    project = Project(name=DEFAULT, match=Match(), action=Action.SEND,
                      destinations=[d.value for d in settings.destinations or []])
    config = _resolve(project, settings, {}, Path.cwd())
    return Projects(None, "RELAY_* settings", {DEFAULT: config}, Router([project]))


def load_projects(settings: Settings) -> Projects:
    if settings.projects is None:
        return implicit_projects(settings)
    return load_projects_file(settings.projects, settings)
