"""`relay deid preview` and `relay deid diff`: a profile tried on real files, and two
recipes compared on them, before either is deployed. Runs locally on files the caller
already holds: nothing is stored or sent. Values from the files are printed only with
--values, and marked as such: without it the output can be pasted into a code review.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from relay_shared.deid.explain import AttributeResult
    from relay_shared.preview import FileDiff, FilePreview, Profile
    from relay_shared.settings import Settings

PHI_BANNER = ("# VALUES FROM THE FILES ARE SHOWN (before: the original, after: what would be "
              "sent). Treat this output as patient data.")
NO_RECIPE = "none"

Files = Annotated[list[Path], typer.Argument(help="DICOM files", exists=True, dir_okay=False)]
ProjectOpt = Annotated[str | None, typer.Option(
    help="The project whose profile to use (RELAY_PROJECTS); default: the relay's settings")]
ValuesOpt = Annotated[bool, typer.Option(
    "--values", help="Also print values from the files (patient data: marked as such)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON instead of text")]


def _settings() -> Settings:
    from relay_shared.settings import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as exc:
        typer.echo(f"relay: {exc}", err=True)
        raise typer.Exit(2) from None


def _profile(settings: Settings, project: str | None, recipe: Path | str | None = "") -> Profile:
    """The project's (or the settings') profile; `recipe` replaces its recipe when given
    (NO_RECIPE: none at all)."""
    from relay_shared.deid import DeidConfig, DeidConfigError, Pseudonymizer
    from relay_shared.guard import GuardRulesError, load_rules
    from relay_shared.preview import Profile
    from relay_shared.projects import ProjectsError, load_projects

    try:
        projects = load_projects(settings)
        name = project or next(iter(projects.projects))
        chosen = projects.project(name)
        if chosen is None:
            typer.echo(f"relay: --project {name}: no such project; known: "
                       + ", ".join(projects.projects), err=True)
            raise typer.Exit(2)
        deid = chosen.deid
        path = deid.recipe if recipe == "" else None if recipe == NO_RECIPE else recipe
        config = DeidConfig.from_settings(list(deid.options), str(path) if path else None)
        return Profile(config, Pseudonymizer(deid.secret.encode(), deid.key_id),
                       load_rules(settings.guard_id_patterns))
    except ProjectsError as exc:
        for problem in exc.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(2) from None
    except (DeidConfigError, GuardRulesError) as exc:
        typer.echo(f"relay: {exc}", err=True)
        raise typer.Exit(2) from None


def _named(files: list[Path]) -> list[tuple[str, Path]]:
    return [(str(path), path) for path in files]


def preview(files: Files, project: ProjectOpt = None, values: ValuesOpt = False,
            as_json: JsonOpt = False) -> None:
    """For each file: each attribute's action (PS3.15 code or recipe rule) and what
    became of it, and what the guard says of the result. Exit 1 if the guard would
    hold a file or one cannot be de-identified."""
    from relay_shared.preview import preview as run_preview

    profile = _profile(_settings(), project)
    with tempfile.TemporaryDirectory(prefix="relay-preview-") as scratch:
        results = run_preview(_named(files), profile, Path(scratch), values=values)
    if as_json:
        typer.echo(json.dumps({"values_shown": values, "files": [
            _preview_json(r) for r in results]}, indent=2, ensure_ascii=False))
    else:
        _print_preview(results, values)
    if not all(r.passes_guard for r in results):
        raise typer.Exit(1)


def _preview_json(result: FilePreview) -> dict[str, Any]:
    return {"file": result.name, "error": result.error, "guard": result.guard,
            "attributes": [asdict(a) for a in result.attributes]}


def _print_preview(results: list[FilePreview], values: bool) -> None:
    if values:
        typer.echo(PHI_BANNER)
    for result in results:
        typer.echo(f"== {result.name}")
        if result.error:
            typer.echo(f"   error: {result.error}")
            continue
        for attribute in result.attributes:
            typer.echo("   " + _line(attribute, values))
        verdict = "passes" if not result.guard else "would HOLD it:"
        typer.echo(f"   guard {verdict}")
        for finding in result.guard:
            typer.echo(f"     {finding}")


def _line(a: AttributeResult, values: bool) -> str:
    text = f"{a.path:<28} {a.keyword[:34]:<34} {a.action} [{a.code}] -> {a.outcome}"
    if values:
        text += f"  before: {a.before!r}  after: {a.after!r}"
    return text


def diff(files: Files,
         recipe: Annotated[list[str], typer.Option(
             help="Twice: the recipe now, then the recipe proposed ('none': no recipe)")],
         project: ProjectOpt = None, values: ValuesOpt = False, as_json: JsonOpt = False
         ) -> None:
    """Which attributes the two recipes treat differently on these files, as a diff
    (- the first recipe, + the second). Exit 1 when anything differs."""
    from relay_shared.preview import compare

    if len(recipe) != 2:
        typer.echo("relay: give --recipe twice: the recipe now, then the one proposed", err=True)
        raise typer.Exit(2)
    for given in recipe:
        if given != NO_RECIPE and not Path(given).is_file():
            typer.echo(f"relay: --recipe {given}: no such file", err=True)
            raise typer.Exit(2)
    settings = _settings()
    first, second = (_profile(settings, project, r if r == NO_RECIPE else Path(r))
                     for r in recipe)
    with tempfile.TemporaryDirectory(prefix="relay-diff-") as scratch:
        diffs = compare(_named(files), first, second, Path(scratch))
    labels = [_label(given, p) for given, p in zip(recipe, (first, second), strict=True)]
    if as_json:
        typer.echo(json.dumps({"values_shown": values, "first": labels[0], "second": labels[1],
                               "files": [_diff_json(d, values) for d in diffs]},
                              indent=2, ensure_ascii=False))
    else:
        _print_diff(diffs, labels, values)
    if any(d.changes or d.guard_first != d.guard_second or d.error for d in diffs):
        raise typer.Exit(1)


def _label(given: str, profile: Profile) -> dict[str, Any]:
    recipe = profile.config.recipe
    return {"recipe": given, "version": recipe.version if recipe else None,
            "sha256": recipe.sha256 if recipe else None}


def _side(attribute: AttributeResult | None, values: bool) -> dict[str, Any] | None:
    if attribute is None:
        return None
    shown = asdict(attribute)
    if not values:
        shown.pop("before")
        shown.pop("after")
    return shown


def _diff_json(d: FileDiff, values: bool) -> dict[str, Any]:
    return {"file": d.name, "error": d.error, "guard_first": d.guard_first,
            "guard_second": d.guard_second,
            "changes": [{"path": c.path, "keyword": c.keyword, "first": _side(c.first, values),
                         "second": _side(c.second, values)} for c in d.changes]}


def _print_diff(diffs: list[FileDiff], labels: list[dict[str, Any]], values: bool) -> None:
    if values:
        typer.echo(PHI_BANNER)
    for sign, label in zip("-+", labels, strict=True):
        typer.echo(f"{sign * 3} {label['recipe']} (version {label['version']}, "
                   f"sha256 {label['sha256']})")
    for d in diffs:
        if not (d.changes or d.error or d.guard_first != d.guard_second):
            continue
        typer.echo(f"@@ {d.name} @@")
        if d.error:
            typer.echo(f"!  error: {d.error}")
        for change in d.changes:
            a, b = change.first, change.second
            # Without values, a pair that differs only in its result would read the same.
            hidden = not values and a is not None and b is not None and a.after != b.after \
                and (a.action, a.code, a.outcome) == (b.action, b.code, b.outcome)
            for sign, side in (("-", a), ("+", b)):
                typer.echo((f"{sign}{_line(side, values)}"
                            + ("  (its resulting value differs)" if hidden else ""))
                           if side is not None
                           else f"{sign}{change.path:<28} {change.keyword[:34]:<34} (absent)")
        for sign, found in (("-", d.guard_first), ("+", d.guard_second)):
            if d.guard_first != d.guard_second:
                typer.echo(f"{sign}guard: " + ("; ".join(found) or "passes"))
