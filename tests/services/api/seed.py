"""A small relay database for the API tests: series in every state, with images, events,
identifiers and an audit. Synthetic values only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from relay_api.auth import hash_token
from relay_shared.bus import InProcessBus, RetryPolicy
from relay_shared.db import record_event, session_scope, upgrade
from relay_shared.models import (
    Image,
    Series,
    SeriesIdentifiers,
    Stage,
    Status,
    Study,
    utcnow,
)
from relay_shared.runtime import Runtime, build_runtime
from relay_shared.settings import load_settings

TOKENS = {"reader": "reader-token-for-tests", "operator": "operator-token-for-tests",
          "admin": "admin-token-for-tests", "reviewer": "reviewer-token-for-tests"}
TOKEN_ENTRIES = ",".join(f"{role}:{hash_token(token)}" for role, token in TOKENS.items())


@dataclass
class Seeded:
    done: int
    failed: int
    quarantined: int
    processing: int
    partial: int


def make_runtime(data_dir: Path, **overrides: object) -> Runtime:
    settings = load_settings(data_dir=data_dir, api_tokens=TOKEN_ENTRIES, **overrides)
    settings.ensure_dirs()
    upgrade(settings.sqlalchemy_url)
    return build_runtime(settings, bus=InProcessBus(RetryPolicy(max_attempts=1)))


def seed(engine: Engine) -> Seeded:
    with session_scope(engine) as session:
        first = Study(study_uid="2.25.1001", patient_pseudonym="PSEUDO-AAAA")
        second = Study(study_uid="2.25.1002", patient_pseudonym="PSEUDO-BBBB")
        session.add_all([first, second])
        session.flush()
        ids = {}
        for name, study, modality, status, stage, images in (
            ("done", first, "CT", Status.DONE, Stage.SEND, [Status.DONE] * 4),
            ("failed", first, "CT", Status.FAILED, Stage.SEND, [Status.DONEPROCESSING] * 3),
            ("quarantined", second, "MR", Status.QUARANTINED, Stage.DEID,
             [Status.QUARANTINED] * 2),
            ("processing", second, "MR", Status.PROCESSING, Stage.DEID, [Status.NEW] * 5),
            ("partial", second, "CT", Status.DONE, Stage.SEND, [Status.DONE] * 3 + [Status.FAILED]),
        ):
            ids[name] = _series(session, study, modality, status, stage, images, name)
        session.add(SeriesIdentifiers(
            series_id=ids["done"], source="local", key_id="k1", patient_pseudonym="PSEUDO-AAAA",
            date_shift_days=-17))
    return Seeded(**ids)


def _series(session, study: Study, modality: str, status: Status, stage: Stage,  # type: ignore[no-untyped-def]
            image_statuses: list[Status], name: str) -> int:
    uid = f"2.25.{sum(map(ord, name))}{len(name)}"
    series = Series(series_uid=uid, study_id=study.id, modality=modality, status=status,
                    stage=stage, trace_id=f"trace{name}",
                    error="SendError: destination refused" if status is Status.FAILED else None,
                    created_at=utcnow() - timedelta(days=1 if name == "done" else 0),
                    audit={"profile": "basic", "removed": ["(0010,0010)"]})
    session.add(series)
    session.flush()
    for n, image_status in enumerate(image_statuses):
        session.add(Image(series_id=series.id, sop_uid=f"{uid}.{n}", status=image_status,
                          reason="file ends early" if image_status is Status.FAILED else None,
                          quarantine_path=f"/quarantine/series-{series.id}/IM{n}.dcm"
                          if image_status in (Status.FAILED, Status.QUARANTINED) else None))
    record_event(session, series.id, "ingest", "received", f"{len(image_statuses)} new")
    if status is Status.DONE:
        record_event(session, series.id, "sender", "done", "working files removed")
    if status is Status.FAILED:
        record_event(session, series.id, "sender", "failed", series.error)
    return int(series.id)  # type: ignore[arg-type]


def client(rt: Runtime, role: str | None = "reader") -> TestClient:
    from relay_api.main import create_app

    headers = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}
    return TestClient(create_app(rt), headers=headers)
