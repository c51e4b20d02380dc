"""What ingest does with one finished delivery (a folder of files).

The rows are committed before the files move, and a delivery is claimed by
renaming it into the work store first: a crash at any point leaves either the
claimed folder (taken up again at start-up, idempotently) or nothing to do.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from relay_shared.db import record_event, session_scope
from relay_shared.dicomfiles import BadDicomFile, InstanceHeader, read_header
from relay_shared.models import Image, Series, Stage, Status, Study, utcnow
from relay_shared.outbox import enqueue
from relay_shared.paths import WorkStore

log = logging.getLogger(__name__)
SERVICE = "ingest"


@dataclass
class Delivery:
    """The files of one claimed folder, sorted by what reading their headers found."""

    good: dict[str, list[tuple[Path, InstanceHeader]]] = field(
        default_factory=lambda: defaultdict(list))
    bad: list[tuple[Path, str]] = field(default_factory=list)


def is_finished(folder: Path) -> bool:
    """A folder named NAME.tmpXXXX is still being written; NAME is finished."""
    return folder.is_dir() and not folder.suffix.lower().startswith(".tmp") \
        and not folder.name.startswith(".")


def claim(folder: Path, store: WorkStore) -> Path:
    claimed = store.claimed_dir / f"{folder.name}-{uuid.uuid4().hex[:8]}"
    claimed.parent.mkdir(parents=True, exist_ok=True)
    folder.rename(claimed)
    return claimed


def read_delivery(folder: Path) -> Delivery:
    delivery = Delivery()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            header = read_header(path)
        except BadDicomFile as exc:
            delivery.bad.append((path, str(exc)))
            continue
        delivery.good[header.series_instance_uid].append((path, header))
    return delivery


UidOf = Callable[[str], str]


def ingest_claimed(folder: Path, engine: Engine, store: WorkStore, uid_of: UidOf,
                   queue: str) -> list[int]:
    """Record, move and enqueue every series of a claimed folder; return their ids."""
    delivery = read_delivery(folder)
    series_ids: list[int] = []
    for original_series_uid, files in delivery.good.items():
        series_ids.append(_ingest_series(files, engine, store, uid_of, queue,
                                         uid_of(original_series_uid)))
    if delivery.bad:
        owner = series_ids[0] if series_ids else _orphan_series(engine)
        _quarantine_bad(delivery.bad, owner, engine, store)
        if not series_ids:
            series_ids.append(owner)
    shutil.rmtree(folder, ignore_errors=True)
    return series_ids


def _ingest_series(files: list[tuple[Path, InstanceHeader]], engine: Engine, store: WorkStore,
                   uid_of: UidOf, queue: str, series_uid: str) -> int:
    first = files[0][1]
    with session_scope(engine) as session:
        study = _get_or_create_study(session, uid_of(first.study_instance_uid))
        series = session.exec(select(Series).where(Series.series_uid == series_uid)).first()
        if series is None:
            series = Series(series_uid=series_uid, study_id=study.id, modality=first.modality,
                            trace_id=uuid.uuid4().hex)
            session.add(series)
            session.flush()
        moves, duplicates = _record_images(session, series, files, uid_of, store)
        if moves:
            series.status, series.stage, series.error = Status.NEW, Stage.DEID, None
            series.attempts, series.updated_at = 0, utcnow()
            enqueue(session, queue, series)
        record_event(session, series.id, SERVICE, "received",
                     f"{len(moves)} new instance(s), {duplicates} already held")
        series_id = series.id
    assert series_id is not None
    for source, image_id in moves:
        target = store.original(series_id, image_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)
    log.info("series received", extra={"series_id": series_id, "new": len(moves),
                                       "duplicates": duplicates})
    return series_id


def _get_or_create_study(session: Session, study_uid: str) -> Study:
    study = session.exec(select(Study).where(Study.study_uid == study_uid)).first()
    if study is None:
        study = Study(study_uid=study_uid)
        session.add(study)
        session.flush()
    return study


def _record_images(session: Session, series: Series, files: list[tuple[Path, InstanceHeader]],
                   uid_of: UidOf, store: WorkStore) -> tuple[list[tuple[Path, int]], int]:
    """New instances become NEW images; an instance already held is a duplicate,
    unless it had failed (the new copy replaces it) or a crash came between the
    commit and the move (the move is done now)."""
    sop_uids = {uid_of(header.sop_instance_uid): (path, header) for path, header in files}
    held = {image.sop_uid: image for image in session.exec(
        select(Image).where(Image.sop_uid.in_(list(sop_uids))))}  # type: ignore[union-attr]
    moves: list[tuple[Path, int]] = []
    duplicates = 0
    for sop_uid, (path, header) in sop_uids.items():
        image = held.get(sop_uid)
        if image is not None and image.id is not None and image.status is Status.NEW \
                and not store.original(image.series_id, image.id).exists():
            moves.append((path, image.id))
            continue
        if image is not None and image.status is not Status.FAILED:
            duplicates += 1
            continue
        if image is None:
            image = Image(series_id=series.id, sop_uid=sop_uid)
        image.sop_class_uid = header.sop_class_uid
        image.transfer_syntax_uid = header.transfer_syntax_uid
        image.status, image.reason, image.updated_at = Status.NEW, None, utcnow()
        image.size_bytes = path.stat().st_size
        session.add(image)
        session.flush()
        assert image.id is not None
        moves.append((path, image.id))
    duplicates += len(files) - len(sop_uids)  # the same instance twice in one delivery
    return moves, duplicates


def _orphan_series(engine: Engine) -> int:
    """A delivery with no readable DICOM still needs a series to hang its failures on."""
    with session_scope(engine) as session:
        series = Series(status=Status.FAILED, stage=Stage.INGEST, trace_id=uuid.uuid4().hex,
                        error="no file of the delivery is readable DICOM")
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
            shutil.move(path, target)
            session.add(Image(series_id=series_id, status=Status.FAILED, reason=reason,
                              quarantine_path=str(target), size_bytes=target.stat().st_size))
        record_event(session, series_id, SERVICE, "quarantined",
                     f"{len(bad)} unreadable file(s) moved to quarantine")
    log.warning("files quarantined", extra={"series_id": series_id, "count": len(bad)})


def _free_name(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}.{n}{path.suffix}")
        n += 1
    return candidate
