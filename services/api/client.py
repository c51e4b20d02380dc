"""`relay status`: the relay's state read from the REST API, drawn in the terminal."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.progress_bar import ProgressBar
from rich.table import Table

# The API's names for series_state.IN_FLIGHT: a client of the REST API, kept free of the
# server's imports so that `relay status` starts fast.
IN_FLIGHT = ("NEW", "PROCESSING", "DONEPROCESSING", "SENT")
STYLE = {"DONE": "green", "FAILED": "red", "QUARANTINED": "red", "HELD": "yellow",
         "IGNORED": "dim"}


class StatusError(Exception):
    """The API could not be read; the message says why, for the terminal."""


@dataclass
class Snapshot:
    stats: dict
    series: list[dict]
    failures: list[dict]
    in_flight: list[dict]


class Api:
    def __init__(self, url: str, token: str, timeout: float = 10) -> None:
        self._client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout,
                                    headers={"Authorization": f"Bearer {token}"})

    def get(self, path: str, **params: str | int) -> dict:
        try:
            response = self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise StatusError(f"cannot reach the API at {self._client.base_url}: "
                              f"{type(exc).__name__}") from None
        if response.status_code in (401, 403):
            raise StatusError("the API refused the token: set RELAY_API_TOKEN or pass --token "
                              "(`relay token new --name NAME --role reader` makes one)")
        if response.status_code != 200:
            raise StatusError(f"{path} answered {response.status_code}")
        return dict(response.json())

    def snapshot(self, limit: int) -> Snapshot:
        in_flight = [s for status in IN_FLIGHT
                     for s in self.get("/api/v1/series", status=status, limit=500)["items"]]
        return Snapshot(stats=self.get("/api/v1/stats"),
                        series=self.get("/api/v1/series", limit=limit)["items"],
                        failures=self.get("/api/v1/failures", limit=limit)["items"],
                        in_flight=in_flight)


def counts_table(stats: dict) -> Table:
    table = Table(title="Series by status", title_justify="left")
    table.add_column("status")
    table.add_column("series", justify="right")
    table.add_column("images", justify="right")
    for status, count in stats["series_by_status"].items():
        table.add_row(f"[{STYLE.get(status, 'default')}]{status}", str(count),
                      str(stats["images_by_status"].get(status, 0)))
    return table


def series_table(series: list[dict]) -> Table:
    table = Table(title="Latest series", title_justify="left")
    for name in ("id", "project", "modality", "patient pseudonym", "status", "images",
                 "progress"):
        table.add_column(name, justify="right" if name in ("id", "images") else "left")
    for s in series:
        bar = ProgressBar(total=1.0, completed=s["progress"], width=20)
        table.add_row(str(s["id"]), s.get("project") or "-", s["modality"] or "-",
                      s["patient_pseudonym"] or "-",
                      f"[{STYLE.get(s['status'], 'default')}]{s['status']}",
                      str(s["image_count"]), Group(bar))
    return table


def failures_table(failures: list[dict]) -> Table:
    table = Table(title="Failures", title_justify="left")
    for name in ("series", "status", "stage", "reason"):
        table.add_column(name)
    for f in failures:
        reasons = [f["error"]] if f["error"] else []
        reasons += [f"image {i['image_id']}: {i['reason'] or i['status']}"
                    for i in f["failed_images"][:3]]
        table.add_row(str(f["series_id"]), f["status"], f["stage"], "\n".join(reasons))
    return table


def summary_line(stats: dict) -> str:
    hour = stats["last_hour"]
    queues = ", ".join(f"{q} {n}" for q, n in (stats["queues"] or {}).items()) or "unknown"
    # A series under review is in no one's queue but a person's: said apart from the
    # series in flight, which move by themselves.
    waiting = stats["series_by_status"].get("REVIEW", 0)
    review = f"; {waiting} waiting for review" if waiting else ""
    return (f"{stats['in_flight']} in flight{review}; last hour {hour['series_done']} series "
            f"done, {hour['images_done']} images, {hour['series_failed']} failed; "
            f"queues: {queues}")


def images_done(in_flight: list[dict]) -> tuple[float, int]:
    total = sum(s["image_count"] for s in in_flight)
    return sum(s["progress"] * s["image_count"] for s in in_flight), total


def render(console: Console, snap: Snapshot) -> None:
    console.print(counts_table(snap.stats))
    console.print(summary_line(snap.stats))
    console.print(series_table(snap.series))
    if snap.failures:
        console.print(failures_table(snap.failures))
    if snap.in_flight:
        done, total = images_done(snap.in_flight)
        console.print(f"in flight: {len(snap.in_flight)} series, {total} images, "
                      f"{done / max(total, 1):.0%} of the way")
        console.print(ProgressBar(total=max(total, 1), completed=done, width=50))


def follow_series(console: Console, api: Api, snap: Snapshot, interval: float, timeout: float,
           limit: int) -> Snapshot:
    """A live bar over the images of the series in flight, until none is left."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    deadline = time.monotonic() + timeout
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("images through the pipeline", total=1)
        while snap.in_flight and time.monotonic() < deadline:
            done, total = images_done(snap.in_flight)
            progress.update(task, total=max(total, 1), completed=int(done),
                            description=f"{len(snap.in_flight)} series in flight")
            time.sleep(interval)
            snap = api.snapshot(limit)
        if snap.in_flight:
            progress.update(task, description="still in flight when the wait ran out")
        else:
            progress.update(task, completed=progress.tasks[0].total or 1,
                            description="nothing in flight")
    return snap
