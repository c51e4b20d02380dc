"""What ingest does with one finished delivery (a folder of files).

The rows are committed before the files move, and a delivery is claimed by
renaming it into the work store first: a crash at any point leaves either the
claimed folder (taken up again at start-up, idempotently) or nothing to do.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, insert, select

from relay_ingest import arrivals
from relay_ingest.origin import is_origin_file
from relay_ingest.routing import Routed, apply_route
from relay_shared import filemodes, series_lock, series_state
from relay_shared.db import record_event, session_scope
from relay_shared.dicomfiles import (
    DEFAULT_LIMITS,
    BadDicomFile,
    InstanceHeader,
    SizeLimits,
    legacy_sha256,
    load_whole,
    read_received,
)
from relay_shared.metrics import STAGE_SECONDS, count_failed
from relay_shared.models import Image, Series, Stage, Status, Study, utcnow
from relay_shared.outbox import enqueue
from relay_shared.paths import WorkStore
from relay_shared.pools import kept_pool
from relay_shared.projects import Action, Arrival, Source

log = logging.getLogger(__name__)
SERVICE = "ingest"


@dataclass(frozen=True)
class Received:
    path: Path
    header: InstanceHeader
    digest: str  # content_digest of the file's bytes (BLAKE3)


@dataclass
class SeriesFiles:
    accepted: list[Received] = field(default_factory=list)
    rejected: list[tuple[Path, str]] = field(default_factory=list)


@dataclass
class Delivery:
    """The files of one claimed folder, sorted by what reading their headers found."""

    series: dict[str, SeriesFiles] = field(default_factory=lambda: defaultdict(SeriesFiles))
    unreadable: list[tuple[Path, str]] = field(default_factory=list)


def is_finished(folder: Path) -> bool:
    """A folder named NAME.tmpXXXX is still being written; NAME is finished."""
    return folder.is_dir() and not folder.suffix.lower().startswith(".tmp") \
        and not folder.name.startswith(".")


def claim(folder: Path, store: WorkStore) -> Path:
    claimed = store.claimed_dir / f"{folder.name}-{uuid.uuid4().hex[:8]}"
    claimed.parent.mkdir(parents=True, exist_ok=True)
    folder.rename(claimed)
    return claimed


LINK_REFUSED = "a symbolic link, not a file: refused, its target is not read"
SPECIAL_REFUSED = "not a regular file (a pipe, socket or device): refused, not read"


def delivery_files(folder: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The regular files of a delivery, and what is refused unread with its reason: a
    link is never followed, so nothing outside the delivery is read or moved (it is set
    aside as itself), and a pipe or device would block or never end."""
    files: list[Path] = []
    refused: list[tuple[Path, str]] = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        base = Path(root)
        refused += [(base / d, LINK_REFUSED) for d in dirs if (base / d).is_symlink()]
        for name in names:
            path = base / name
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode):
                files.append(path)
            else:
                refused.append((path, LINK_REFUSED if stat.S_ISLNK(mode) else SPECIAL_REFUSED))
    return sorted(files), sorted(refused)


def read_delivery(folder: Path, limits: SizeLimits = DEFAULT_LIMITS) -> Delivery:
    delivery = Delivery()
    regular, refused = delivery_files(folder)
    for path, reason in refused:
        log.warning("file in a delivery refused unread", extra={"file": path.name,
                                                                 "reason": reason})
    delivery.unreadable += refused
    for path, ahead in _read_ahead([p for p in regular if not is_origin_file(p)]):
        try:
            header, digest = read_received(path, limits, _result(ahead))
        except BadDicomFile as exc:
            delivery.unreadable.append((path, str(exc)))
            continue
        received = Received(path, header, digest)
        delivery.series[header.series_instance_uid].accepted.append(received)
    for files in delivery.series.values():
        _reject_other_studies(files)
    return delivery


# Files read and hashed ahead of the one being parsed: both release the GIL, so they
# run on another core while this thread parses; a few at a time bound the memory held.
READ_AHEAD_THREADS = 2
READ_AHEAD = 4


def _read_ahead(paths: list[Path]
                ) -> Iterator[tuple[Path, Future[tuple[bytes, str] | None]]]:
    pool = kept_pool("ingest-read", READ_AHEAD_THREADS)
    pending: deque[tuple[Path, Future[tuple[bytes, str] | None]]] = deque()
    try:
        for path in paths:
            pending.append((path, pool.submit(load_whole, path)))
            if len(pending) > READ_AHEAD:
                yield pending.popleft()
        while pending:
            yield pending.popleft()
    finally:  # a delivery given up midway: what was not read yet is not read
        for _path, ahead in pending:
            ahead.cancel()


def _result(ahead: Future[tuple[bytes, str] | None]) -> tuple[bytes, str] | None:
    """What was read ahead; nothing when reading failed, so the file is read again by
    read_received, which names what is wrong with it."""
    try:
        return ahead.result()
    except OSError:
        return None


def _reject_other_studies(files: SeriesFiles) -> None:
    """A series belongs to one study: files claiming another are set aside, not guessed at."""
    studies = Counter(r.header.study_instance_uid for r in files.accepted)
    if len(studies) < 2:
        return
    main_study = studies.most_common(1)[0][0]
    for received in [r for r in files.accepted if r.header.study_instance_uid != main_study]:
        files.accepted.remove(received)
        files.rejected.append((received.path, "StudyInstanceUID differs from the other "
                               "instances of its series (mixed studies in one series)"))


UidOf = Callable[[str], str]
# Routes a series, given how it arrived and its first file; None: every series is sent.
RouteOf = Callable[[Arrival, Path], Routed]


def ingest_claimed(folder: Path, engine: Engine, store: WorkStore, uid_of: UidOf,
                   queue: str, route: RouteOf | None = None,
                   limits: SizeLimits = DEFAULT_LIMITS,
                   arrival: Arrival = Arrival(Source.FOLDER.value),
                   part: str | None = None) -> list[int]:
    """Record, move and enqueue every series of a claimed folder; return their ids.

    ``arrival`` is how the delivery came and ``part`` the SCP's staged delivery it was,
    both read from its sealed origin file by the caller."""
    delivery = read_delivery(folder, limits)
    series_ids: list[int] = []
    for original_series_uid, files in delivery.series.items():
        routed = route(arrival, files.accepted[0].path) if route else None
        with STAGE_SECONDS.labels(stage=SERVICE).time():
            series_id, conflicts = _ingest_series(files.accepted, engine, store, uid_of, queue,
                                                  uid_of(original_series_uid), routed, part)
        series_ids.append(series_id)
        if files.rejected or conflicts:
            _quarantine_bad([*files.rejected, *conflicts], series_id, engine, store)
    if delivery.unreadable:
        owner = series_ids[0] if series_ids else _orphan_series(engine)
        _quarantine_bad(delivery.unreadable, owner, engine, store)
        if not series_ids:
            series_ids.append(owner)
    shutil.rmtree(folder, ignore_errors=True)
    return series_ids


def _ingest_series(files: list[Received], engine: Engine, store: WorkStore, uid_of: UidOf,
                   queue: str, series_uid: str, routed: Routed | None, part: str | None = None
                   ) -> tuple[int, list[tuple[Path, str]]]:
    first = files[0].header
    with session_scope(engine) as session:
        series_lock.recording(session, series_uid)
        study = _get_or_create_study(session, uid_of(first.study_instance_uid))
        series = session.exec(select(Series).where(Series.series_uid == series_uid)).first()
        # A series whose earlier part is in, waiting for this one to start (arrivals.py).
        waiting = series is not None and series.status is Status.NEW \
            and series.stage is Stage.DEID
        if series is None:
            series = Series(series_uid=series_uid, study_id=study.id, modality=first.modality,
                            trace_id=uuid.uuid4().hex)
            session.add(series)
            session.flush()
        outcome = _record_images(session, series, files, uid_of, store)
        action, discarded = Action.SEND, []
        if outcome.moves:
            action = apply_route(session, series, routed, outcome.moves)
            if action is Action.DROP:
                discarded, outcome.moves = outcome.moves, []
        to_deid = bool(outcome.moves) and action is Action.SEND
        complete = arrivals.taken_in(session, series_uid, part)
        series_state.received(session, series, f"{len(outcome.moves)} new instance(s), "
                              f"{outcome.duplicates} already held, "
                              f"{len(outcome.conflicts)} conflicting"
                              + ("" if complete else "; other parts still arriving"), to_deid)
        if complete and action is Action.SEND and (to_deid or waiting):
            enqueue(session, queue, series)
        series_id = series.id
    assert series_id is not None
    if action is Action.DROP:
        for source, _image_id in discarded:
            source.unlink(missing_ok=True)
    for source, image_id in outcome.moves:
        target = store.original(series_id, image_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)
        filemodes.take(target)
    log.info("series received", extra={"series_id": series_id, "trace_id": series.trace_id,
                                       "new": len(outcome.moves),
                                       "duplicates": outcome.duplicates})
    return series_id, outcome.conflicts


def _get_or_create_study(session: Session, study_uid: str) -> Study:
    study = session.exec(select(Study).where(Study.study_uid == study_uid)).first()
    if study is None:
        study = Study(study_uid=study_uid)
        session.add(study)
        session.flush()
    return study


@dataclass
class Recorded:
    moves: list[tuple[Path, int]] = field(default_factory=list)
    duplicates: int = 0
    conflicts: list[tuple[Path, str]] = field(default_factory=list)


def _record_images(session: Session, series: Series, files: list[Received], uid_of: UidOf,
                   store: WorkStore) -> Recorded:
    """New instances become NEW images. An instance already held is a duplicate, unless
    it had failed (the new copy replaces it), a crash came between the commit and the
    move (the move is done now), or its content differs (a conflict, kept aside)."""
    by_uid = {uid_of(r.header.sop_instance_uid): r for r in files}
    held = {image.sop_uid: image for image in session.exec(
        select(Image).where(col(Image.sop_uid).in_(list(by_uid))))}
    outcome = Recorded(duplicates=len(files) - len(by_uid))  # one instance twice in a delivery
    assert series.id is not None  # a recorded series
    replaced: list[tuple[Path, Image]] = []
    new_rows: list[dict[str, object]] = []
    now = utcnow()
    for sop_uid, received in by_uid.items():
        image = held.get(sop_uid)
        if image is not None and image.status not in (Status.FAILED, Status.IGNORED):
            _held_again(image, received, store, outcome)
            continue
        facts = {"sop_class_uid": received.header.sop_class_uid,
                 "transfer_syntax_uid": received.header.transfer_syntax_uid,
                 "size_bytes": received.path.stat().st_size,
                 "content_blake3": received.digest}
        if image is None:
            new_rows.append({"series_id": series.id, "sop_uid": sop_uid, "status": Status.NEW,
                             "reason": None, "pixel_redacted": False, "updated_at": now,
                             **facts})
            continue
        for name, value in facts.items():  # a failed or ignored image, taken again
            setattr(image, name, value)
        series_state.image_to(image, Status.NEW)
        session.add(image)
        replaced.append((received.path, image))
    session.flush()
    ids: dict[str, int] = {}
    if new_rows:
        # One statement for the delivery's new images, without a model object each:
        # building and filling those was about a third of ingest's own time (cProfile).
        ids = dict(session.execute(insert(Image).returning(col(Image.sop_uid), col(Image.id)),
                                   new_rows).tuples().all())
    for sop_uid, received in by_uid.items():
        if sop_uid in ids:
            outcome.moves.append((received.path, ids[sop_uid]))
    for path, image in replaced:
        assert image.id is not None
        outcome.moves.append((path, image.id))
    return outcome


def _held_again(image: Image, received: Received, store: WorkStore, outcome: Recorded) -> None:
    assert image.id is not None
    if _differs(image, received):
        outcome.conflicts.append((received.path, f"SOPInstanceUID reused with different "
                                  f"content (image {image.id} holds the first)"))
    elif image.status is Status.NEW and not store.original(image.series_id, image.id).exists():
        outcome.moves.append((received.path, image.id))
    else:
        outcome.duplicates += 1


def _differs(image: Image, received: Received) -> bool:
    """Whether the held image's recorded content is not the received file's. An image
    recorded before content_blake3 holds only its SHA-256: the file's is computed for it
    (rare: only a held SOPInstanceUID received again), else every re-sent copy of it
    would be a conflict. With neither recorded, nothing tells them apart."""
    if image.content_blake3:
        return image.content_blake3 != received.digest
    if image.content_sha256:
        return image.content_sha256 != legacy_sha256(received.path)
    return False


def _orphan_series(engine: Engine) -> int:
    """A delivery with no readable DICOM still needs a series to hang its failures on."""
    with session_scope(engine) as session:
        series = Series(trace_id=uuid.uuid4().hex)
        series_state.rejected(series, "no file of the delivery is readable DICOM")
        session.add(series)
        session.flush()
        assert series.id is not None
        return series.id


def _quarantine_bad(bad: list[tuple[Path, str]], series_id: int, engine: Engine,
                    store: WorkStore) -> None:
    target_dir = store.quarantine_for(series_id)
    target_dir.mkdir(parents=True, exist_ok=True)
    with session_scope(engine) as session:
        for path, reason in bad:
            target = _free_name(target_dir / path.name)
            shutil.move(path, target)  # a link moves as itself: os.rename, not a copy
            if not target.is_symlink():
                filemodes.take(target)
            image = Image(series_id=series_id, quarantine_path=str(target),
                          size_bytes=target.lstat().st_size)
            series_state.image_to(image, Status.FAILED, reason)
            session.add(image)
        record_event(session, series_id, SERVICE, "quarantined",
                     f"{len(bad)} unreadable file(s) moved to quarantine")
    count_failed(SERVICE, [reason for _, reason in bad])
    log.warning("files quarantined", extra={"series_id": series_id, "count": len(bad)})


def _free_name(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}.{n}{path.suffix}")
        n += 1
    return candidate
