"""Follow Orthanc servers' changes feed and take each stable series as a folder delivery.

Orthanc numbers its changes; a ``StableSeries`` change says a series has had no
new instance for Orthanc's StableAge. For each one the follower downloads the
series' instances into ``incoming/NAME.tmpXXXX`` and renames the folder when it
is complete, so from there it goes the way of any folder delivery. Only then is
the change committed as taken, with the series it took, in one transaction: a
crash before the commit makes the change be taken again on restart (ingest
merges the second delivery without duplicates), and a change replayed after the
commit is skipped. A series is deleted from its source only once the relay holds
every one of its instances DONE, and only when configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from relay_ingest.origin import OriginSeal, write_origin
from relay_shared.db import session_scope
from relay_shared.models import FollowCursor, FollowedSeries, Image, Series, Status, utcnow
from relay_shared.projects import Arrival, Source
from relay_shared.runtime import Runtime
from relay_shared.settings import Settings

log = logging.getLogger(__name__)
STABLE_SERIES = "StableSeries"


class SourceError(Exception):
    """The followed Orthanc could not be read; the round is tried again later."""


@dataclass(frozen=True)
class Change:
    seq: int
    change_type: str
    resource_id: str


@dataclass(frozen=True)
class ChangesPage:
    changes: list[Change]
    last: int
    done: bool


class OrthancSource:
    """The REST calls the follower makes to one Orthanc."""

    def __init__(self, url: str, settings: Settings) -> None:
        self.sealer = OriginSeal.of(settings)
        self.name = _without_credentials(url)
        auth = None
        if settings.follow_orthanc_username:
            password = settings.follow_orthanc_password
            auth = httpx.BasicAuth(settings.follow_orthanc_username,
                                   password.get_secret_value() if password else "")
        verify: bool | str = str(settings.tls_ca_bundle) if settings.tls_ca_bundle \
            else settings.tls_verify
        self._client = httpx.Client(base_url=url.rstrip("/"), auth=auth, verify=verify,
                                    timeout=settings.http_timeout)

    def _get(self, path: str, **params: str | int) -> httpx.Response:
        try:
            response = self._client.get(path, params=params or None)
        except httpx.HTTPError as exc:
            raise SourceError(f"{self.name} unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise SourceError(f"{self.name} answered HTTP {response.status_code} to {path}")
        return response

    def changes(self, since: int, limit: int) -> ChangesPage:
        body = self._get("/changes", since=since, limit=limit).json()
        changes = [Change(int(c["Seq"]), str(c["ChangeType"]), str(c["ID"]))
                   for c in body.get("Changes", [])]
        return ChangesPage(changes, int(body.get("Last", since)), bool(body.get("Done", True)))

    def last_change(self) -> int:
        return int(self._get("/changes", last="").json().get("Last", 0))

    def series(self, orthanc_id: str) -> dict | None:
        """The series' description, or None when it is no longer on the server."""
        try:
            response = self._client.get(f"/series/{orthanc_id}")
        except httpx.HTTPError as exc:
            raise SourceError(f"{self.name} unreachable: {type(exc).__name__}") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise SourceError(f"{self.name} answered HTTP {response.status_code} to a series")
        return dict(response.json())

    def download(self, instance_id: str, target: Path) -> None:
        try:
            with self._client.stream("GET", f"/instances/{instance_id}/file") as response:
                if response.status_code != 200:
                    raise SourceError(f"{self.name} answered HTTP {response.status_code} "
                                      "to an instance file")
                with open(target, "wb") as stream:
                    for chunk in response.iter_bytes():
                        stream.write(chunk)
        except httpx.HTTPError as exc:
            raise SourceError(f"{self.name} unreachable: {type(exc).__name__}") from exc

    def delete_series(self, orthanc_id: str) -> None:
        try:
            response = self._client.delete(f"/series/{orthanc_id}")
        except httpx.HTTPError as exc:
            raise SourceError(f"{self.name} unreachable: {type(exc).__name__}") from exc
        if response.status_code not in (200, 404):
            raise SourceError(f"{self.name} refused a delete: HTTP {response.status_code}")

    def close(self) -> None:
        self._client.close()


def _without_credentials(url: str) -> str:
    parsed = httpx.URL(url)
    return str(parsed.copy_with(username=None, password=None)).rstrip("/")


def load_cursor(engine: Engine, source: str) -> int | None:
    with Session(engine) as session:
        row = session.exec(select(FollowCursor).where(FollowCursor.source == source)).first()
        return None if row is None else row.last_change


def _set_cursor(session: Session, source: str, seq: int) -> None:
    row = session.exec(select(FollowCursor).where(FollowCursor.source == source)).first()
    if row is None:
        row = FollowCursor(source=source, last_change=seq)
    row.last_change, row.updated_at = max(row.last_change, seq), utcnow()
    session.add(row)


def save_cursor(engine: Engine, source: str, seq: int) -> None:
    with session_scope(engine) as session:
        _set_cursor(session, source, seq)


def already_taken(engine: Engine, source: str, orthanc_id: str) -> bool:
    with Session(engine) as session:
        return session.exec(select(FollowedSeries.id).where(
            FollowedSeries.source == source,
            FollowedSeries.orthanc_id == orthanc_id)).first() is not None


def fetch_folder(source: OrthancSource, instance_ids: list[str], incoming: Path,
                 name: str) -> Path:
    """Download into NAME.tmpXXXX, then rename: ingest never sees a half series."""
    incoming.mkdir(parents=True, exist_ok=True)
    final = incoming / name
    partial = incoming / f"{name}.tmp{uuid.uuid4().hex[:8]}"
    partial.mkdir()
    write_origin(partial, Arrival(Source.FOLLOW.value), source.sealer)
    try:
        for n, instance_id in enumerate(instance_ids):
            source.download(instance_id, partial / f"{n:05d}.dcm")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    os.rename(partial, final)
    return final


def take_series(source: OrthancSource, engine: Engine, incoming: Path, uid_of,  # type: ignore[no-untyped-def]
                change: Change) -> bool:
    """Deliver one stable series and commit the change as taken; False if skipped."""
    if already_taken(engine, source.name, change.resource_id):
        save_cursor(engine, source.name, change.seq)
        return False
    info = source.series(change.resource_id)
    if info is None or not info.get("Instances"):
        save_cursor(engine, source.name, change.seq)  # deleted since it became stable
        return False
    instances = [str(i) for i in info["Instances"]]
    fetch_folder(source, instances, incoming,
                 f"orthanc-{change.resource_id[:12]}-{uuid.uuid4().hex[:8]}")
    original_uid = str(info.get("MainDicomTags", {}).get("SeriesInstanceUID", "")).strip()
    with session_scope(engine) as session:
        session.add(FollowedSeries(source=source.name, orthanc_id=change.resource_id,
                                   series_uid=uid_of(original_uid) if original_uid else None,
                                   instances=len(instances)))
        _set_cursor(session, source.name, change.seq)
    return True


def follow_round(source: OrthancSource, engine: Engine, incoming: Path, uid_of,  # type: ignore[no-untyped-def]
                 batch: int, from_start: bool) -> int:
    """Take every stable series the feed shows since the cursor; returns how many."""
    cursor = load_cursor(engine, source.name)
    if cursor is None:
        cursor = 0 if from_start else source.last_change()
        save_cursor(engine, source.name, cursor)
    taken = 0
    while True:
        page = source.changes(cursor, batch)
        for change in page.changes:
            if change.change_type == STABLE_SERIES:
                taken += take_series(source, engine, incoming, uid_of, change)
        if page.last > cursor:
            save_cursor(engine, source.name, page.last)
        cursor = max(cursor, page.last)
        if page.done or not page.changes:
            return taken


def delete_done(source: OrthancSource, engine: Engine) -> int:
    """Delete from the source each taken series the relay holds whole and DONE."""
    deleted = 0
    with Session(engine) as session:
        candidates = session.exec(
            select(FollowedSeries, Series).join(
                Series, col(Series.series_uid) == FollowedSeries.series_uid).where(
                FollowedSeries.source == source.name,
                col(FollowedSeries.deleted_at).is_(None), Series.status == Status.DONE)).all()
        done = [(taken, _done_images(session, series.id)) for taken, series in candidates]
    for taken, done_images in done:
        if done_images < taken.instances:
            continue  # some instance did not make it: the source keeps the series
        source.delete_series(taken.orthanc_id)
        with session_scope(engine) as session:
            taken.deleted_at = utcnow()
            session.add(taken)
        deleted += 1
    return deleted


def _done_images(session: Session, series_id: int | None) -> int:
    return int(session.exec(select(func.count()).select_from(Image).where(
        Image.series_id == series_id, Image.status == Status.DONE)).one())


async def run(rt: Runtime, stop: asyncio.Event) -> None:
    """Follow every configured source until stopped, each round after the poll interval."""
    settings = rt.settings
    assert settings.incoming_dir is not None
    sources = [OrthancSource(url, settings) for url in settings.follow_orthanc_urls]
    log.info("following Orthanc changes", extra={"sources": len(sources)})
    try:
        while not stop.is_set():
            for source in sources:
                await _one_round(rt, source)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.follow_poll_interval)
    finally:
        for source in sources:
            source.close()


async def _one_round(rt: Runtime, source: OrthancSource) -> None:
    settings = rt.settings
    assert settings.incoming_dir is not None  # the follower runs only with a folder to fill
    try:
        taken = await asyncio.to_thread(
            follow_round, source, rt.engine, settings.incoming_dir, rt.pseudonymizer.uid,
            settings.follow_batch, settings.follow_from_start)
        deleted = await asyncio.to_thread(delete_done, source, rt.engine) \
            if settings.follow_delete_after_done else 0
    except Exception as exc:  # the source or the database is down: the next round retries
        log.warning("follow round failed", extra={"source": source.name,
                                                  "error": type(exc).__name__})
        return
    if taken or deleted:
        log.info("followed series taken", extra={"source": source.name, "taken": taken,
                                                 "deleted": deleted})
