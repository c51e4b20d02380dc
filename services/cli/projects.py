"""`relay projects check|explain`: tools for the people who write the projects file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

projects_app = typer.Typer(help="The projects file (RELAY_PROJECTS).", no_args_is_help=True)
FileArg = Annotated[Path, typer.Argument(help="The projects file", dir_okay=False)]


def _load(path: Path):  # type: ignore[no-untyped-def]
    """The file checked against the settings in force (they fill what projects leave out)."""
    from relay_shared.projects import ProjectsError, load_projects_file
    from relay_shared.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        typer.echo(f"relay: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        return load_projects_file(path, settings)
    except ProjectsError as exc:
        for problem in exc.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(1) from None


@projects_app.command("check")
def check(path: FileArg) -> None:
    """Validate the file and resolve every secret it refers to (never printing one);
    each problem is printed as FILE:LINE: message, and the exit status is 1."""
    projects = _load(path)
    typer.echo(f"{path}: {len(projects.projects)} project(s), "
               f"{len(projects.destinations)} destination(s), sha256 {projects.sha256}")


@projects_app.command("explain")
def explain(
    path: FileArg,
    files: Annotated[list[Path], typer.Argument(help="DICOM files, each the first of a series",
                                                exists=True, dir_okay=False)],
    source: Annotated[str, typer.Option(help="How the series would arrive: scp, folder, "
                                        "follow, collect")] = "folder",
    calling_ae: Annotated[str | None, typer.Option(help="The SCP's calling AE title")] = None,
    incoming_subdir: Annotated[str | None, typer.Option(help="The subfolder of incoming")
                               ] = None,
) -> None:
    """For each file: which project takes it, and for each earlier project the condition
    that failed. Only the rules are printed, never a value from the file."""
    from relay_ingest.routing import header_values
    from relay_shared.projects import Arrival, Source

    projects = _load(path)
    try:
        arrival = Arrival(Source(source).value, calling_ae, incoming_subdir)
    except ValueError:
        typer.echo("relay: --source must be scp, folder, follow or collect", err=True)
        raise typer.Exit(2) from None
    for file in files:
        decision = projects.router.explain(arrival, header_values(file, projects.router.keywords))
        project = projects.project(decision.project)
        taken = f"{project.name} ({project.action.value})" if project else "no project: dropped"
        typer.echo(f"{file}: {taken}")
        for name, condition in decision.failed:
            typer.echo(f"  {name}: {condition} does not hold")
