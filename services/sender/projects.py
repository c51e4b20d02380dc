"""Each project's destinations, and study dispatch.

A project sends only to the destinations it names in the projects file, built
from their definitions there (several of one kind are fine: each is known by its
name, which is what each image's delivery is recorded under). The implicit
project of a relay without a projects file sends to RELAY_DESTINATIONS, as before.

`dispatch: study`: a series of such a project waits, de-identified, until its
study is whole. The study (its series in this project) is whole once none of
them is still before the send stage (NEW, PROCESSING, HELD) and none of their
images has arrived or changed for RELAY_STUDY_STABLE_AGE seconds; then all of
them are sent, one after another. A waiting series is marked as seen each time
its message comes, so the sweep does not take it for a stuck one at every round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from relay_sender.commitment import CommittedDicomDestination
from relay_sender.destinations import Destination, FolderDestination
from relay_sender.dicom_ae import DicomDestination
from relay_sender.dicomweb import DicomWebDestination
from relay_sender.gcs import GcsDestination, make_client
from relay_sender.handlers import SendContext, send_series
from relay_sender.orthanc import OrthancDestination
from relay_sender.s3 import S3Destination, s3_verify
from relay_sender.transcode import TranscodingDestination
from relay_shared import tlsconfig
from relay_shared.db import record_event, session_scope
from relay_shared.models import Event, Image, Series, Status, utcnow
from relay_shared.outbox import enqueue
from relay_shared.projects import (
    DestinationConfig,
    Dispatch,
    ProjectConfig,
    Projects,
    ProjectsRegistry,
)
from relay_shared.projects.schema import DicomDestination as DicomConfig
from relay_shared.settings import GcsFormat, Settings

log = logging.getLogger(__name__)
SERVICE = "sender"
# Not yet de-identified, held, or waiting for review: a study with such a series is
# not whole yet.
BEFORE_SEND = (Status.NEW, Status.PROCESSING, Status.HELD, Status.REVIEW)
DISPATCH_INTERVAL = 2.0


def build_named(name: str, config: DestinationConfig, projects: Projects, settings: Settings,
                engine: Engine | None) -> Destination:
    built: Destination
    secret = projects.secret(getattr(config, "password_env", None))
    if config.kind == "outbox":
        base = Path(projects.source).resolve().parent
        built = FolderDestination(config.path if config.path.is_absolute() else base / config.path)
    elif config.kind == "orthanc":
        built = OrthancDestination(config.url, config.username, secret, settings.http_timeout,
                                   concurrency=settings.send_concurrency,
                                   verify=tlsconfig.http_verify(settings))
    elif config.kind == "dicom":
        built = _dicom(config, settings)
    elif config.kind == "dicomweb":
        built = DicomWebDestination(
            config.url, config.username, secret, settings.http_timeout,
            verify=tlsconfig.http_verify(settings), token=projects.secret(config.token_env),
            token_url=config.token_url, client_id=config.client_id,
            client_secret=projects.secret(config.client_secret_env), scope=config.scope,
            concurrency=settings.send_concurrency)
    elif config.kind == "s3":
        built = S3Destination(
            config.bucket, config.prefix, region=config.region, endpoint=config.endpoint,
            access_key_id=projects.secret(config.access_key_id_env),
            secret_access_key=projects.secret(config.secret_access_key_env),
            fmt=GcsFormat(config.format),
            fields=config.sidecar_fields or settings.s3_sidecar_fields,
            engine=engine, timeout=settings.http_timeout, verify=s3_verify(settings))
    else:
        built = GcsDestination(make_client(settings.gcs_endpoint), config.bucket, config.prefix,
                               GcsFormat(config.format),
                               config.sidecar_fields or settings.gcs_sidecar_fields, engine,
                               settings.http_timeout)
    if config.transfer_syntax:
        built = TranscodingDestination(built, config.transfer_syntax)
    built.name = name  # deliveries are recorded under the destination's own name
    return built


def _dicom(config: DicomConfig, settings: Settings) -> DicomDestination:
    if config.verify == "commitment":
        return CommittedDicomDestination(
            config.host, config.port, config.ae_title, config.calling_ae_title, config.timeout,
            listen_host=settings.dicom_commitment_host,
            listen_port=settings.dicom_commitment_port,
            commitment_timeout=settings.dicom_commitment_timeout)
    return DicomDestination(config.host, config.port, config.ae_title, config.calling_ae_title,
                            config.timeout, tlsconfig.dicom_client_factory(settings, config.host),
                            concurrency=settings.send_concurrency)


@dataclass
class ProjectSenders:
    base: SendContext  # the implicit project's: RELAY_DESTINATIONS
    registry: ProjectsRegistry
    settings: Settings
    _built: dict[tuple[str | None, str], SendContext] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def routed(self, series: Series) -> tuple[Projects, ProjectConfig] | None:
        return self.registry.for_series(series.project, series.projects_sha256)

    def context(self, projects: Projects, project: ProjectConfig) -> SendContext:
        if projects.implicit:
            return self.base
        key = (projects.sha256, project.name)
        with self._lock:
            if key not in self._built:
                named = [build_named(n, projects.destinations[n], projects, self.settings,
                                     self.base.engine) for n in project.destinations]
                self._built[key] = replace(self.base, destinations=named)
            return self._built[key]

    def send(self, series_id: int) -> None:
        with Session(self.base.engine) as session:
            series = session.get(Series, series_id)
            found = self.routed(series) if series is not None else None
        if series is None or found is None:
            send_series(self.base, series_id)  # nothing left to do, or a project gone:
            return  # the handler skips what is not its to send
        projects, project = found
        if project.dispatch is Dispatch.STUDY and not self._study_whole(series):
            _note_waiting(self.base.engine, series_id)
            return
        send_series(self.context(projects, project), series_id)

    def _study_whole(self, series: Series) -> bool:
        return study_whole(self.base.engine, series.study_id, series.project,
                           self.settings.study_stable_age)

    def dispatch_ready_studies(self) -> int:
        """Send every waiting series whose study is now whole; returns how many."""
        sent = 0
        for series_id in waiting_series(self.base.engine):
            with Session(self.base.engine) as session:
                series = session.get(Series, series_id)
                found = self.routed(series) if series is not None else None
            if series is None or found is None or found[1].dispatch is not Dispatch.STUDY:
                continue
            if self._study_whole(series):
                self._send_now(self.context(*found), series_id)
                sent += 1
        return sent

    def _send_now(self, ctx: SendContext, series_id: int) -> None:
        """A failure here goes to the send queue, whose retries and dead letters apply."""
        try:
            send_series(ctx, series_id)
        except Exception:
            log.warning("study dispatch: series handed to the send queue",
                        extra={"series_id": series_id}, exc_info=True)
            with session_scope(self.base.engine) as session:
                series = session.get(Series, series_id)
                if series is not None:
                    enqueue(session, self.settings.send_queue, series)


def study_whole(engine: Engine, study_id: int | None, project: str | None,
                stable_age: float) -> bool:
    with Session(engine) as session:
        same_study = (Series.study_id == study_id, Series.project == project)
        pending = session.exec(select(func.count()).select_from(Series).where(
            *same_study, col(Series.status).in_(BEFORE_SEND))).one()
        latest = session.exec(select(func.max(Image.updated_at)).join(
            Series, col(Series.id) == Image.series_id).where(*same_study)).one()
    if pending:
        return False
    if latest is None:
        return True
    if latest.tzinfo is None:  # SQLite gives naive values back
        latest = latest.replace(tzinfo=utcnow().tzinfo)
    return utcnow() - latest >= timedelta(seconds=stable_age)


def waiting_series(engine: Engine) -> list[int]:
    """De-identified series of projects that dispatch by study, oldest first."""
    with Session(engine) as session:
        return [i for i in session.exec(select(Series.id).where(
            Series.status == Status.DONEPROCESSING, col(Series.project).is_not(None))
            .order_by(col(Series.id))) if i is not None]


def _note_waiting(engine: Engine, series_id: int) -> None:
    """Said once per series. Touching the series (not its images, which time the study)
    keeps the sweep from sending it again before RELAY_STUCK_AFTER."""
    with session_scope(engine) as session:
        series = session.get(Series, series_id)
        if series is not None:
            series.updated_at = utcnow()
        seen = session.exec(select(Event.id).where(Event.series_id == series_id,
                                                   Event.kind == "waiting")).first()
        if seen is None:
            record_event(session, series_id, SERVICE, "waiting",
                         "sent with the rest of its study once the study is whole")


async def dispatch_studies(senders: ProjectSenders, stop: asyncio.Event,
                           interval: Callable[[], float] = lambda: DISPATCH_INTERVAL) -> None:
    if senders.settings.projects is None:
        return  # the implicit project sends each series as it comes
    while not stop.is_set():
        try:
            await asyncio.to_thread(senders.dispatch_ready_studies)
        except Exception:  # a destination or the database is down: the next round retries
            log.warning("study dispatch round failed", exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval())
