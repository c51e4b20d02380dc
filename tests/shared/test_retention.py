"""Retention on a real database and real folders: what goes, what stays, and the record."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, select

from relay_shared.db import make_engine, session_scope, upgrade
from relay_shared.models import Event, Series, SeriesIdentifiers, Status, utcnow
from relay_shared.paths import WorkStore
from relay_shared.retention import purge
from relay_shared.settings import load_settings
from relay_shared.vault import IdentifierVault, derive_key
from tests.support.services import relay_env, run_relay


def _series(engine, status: Status, age_days: float, sealed: str | None) -> int:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        series = Series(status=status, trace_id="t", updated_at=utcnow() - timedelta(age_days))
        session.add(series)
        session.flush()
        assert series.id is not None
        session.add(SeriesIdentifiers(series_id=series.id, source="local", key_id="k1",
                                      patient_pseudonym="PSEUDO", date_shift_days=-10,
                                      original_encrypted=sealed, original_key_id="k1"))
        return series.id


def test_purge_removes_only_what_is_past_its_time(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    upgrade(url)
    engine = make_engine(url)
    store = WorkStore(tmp_path / "work", tmp_path / "quarantine")
    vault = IdentifierVault({"k1": derive_key(b"secret", "k1")})
    _, sealed = vault.seal({"PatientID": "MRN-1"})
    old_done = _series(engine, Status.DONE, 40, sealed)
    young_done = _series(engine, Status.DONE, 5, sealed)
    old_failed = _series(engine, Status.FAILED, 40, sealed)
    for series_id in (old_done, young_done, old_failed):
        store.quarantine_for(series_id).mkdir(parents=True)
        store.series_dir(series_id).mkdir(parents=True)
    settings = load_settings(retain_originals_days=30, retain_quarantine_days=30,
                             retain_failed_work_days=30)

    dry = purge(engine, store, settings, dry_run=True)
    assert dry.originals == [old_done]
    assert store.quarantine_for(old_done).exists()  # a dry run changes nothing

    report = purge(engine, store, settings)
    assert report.originals == [old_done]  # a FAILED series keeps them for its retry
    assert sorted(report.quarantine) == sorted([old_done, old_failed])
    assert report.failed_work == [old_failed]
    assert not store.quarantine_for(old_done).exists()
    assert store.quarantine_for(young_done).exists() and store.series_dir(young_done).exists()
    assert not store.series_dir(old_failed).exists()
    with Session(engine) as session:
        rows = {r.series_id: r for r in session.exec(select(SeriesIdentifiers))}
        assert rows[old_done].original_encrypted is None
        assert rows[old_done].patient_pseudonym == "PSEUDO"  # the pseudonymous audit stays
        assert rows[young_done].original_encrypted == sealed
        purged = session.exec(select(Event).where(Event.kind == "purged")).all()
    assert {e.series_id for e in purged} == {old_done, old_failed}


def test_relay_purge_dry_run_says_what_would_go(tmp_path: Path) -> None:
    env = relay_env({}, data_dir=tmp_path / "var")
    run_relay("db", "upgrade", env=env)
    result = run_relay("purge", "--dry-run", env=env)
    assert "would purge originals of 0 series" in result.stdout


def test_the_vault_opens_what_an_older_key_sealed(tmp_path: Path) -> None:
    old = IdentifierVault({"k1": derive_key(b"secret", "k1")})
    key_id, token = old.seal({"PatientID": "MRN-1"})
    rotated = IdentifierVault({"k2": derive_key(b"secret", "k2"),
                               "k1": derive_key(b"secret", "k1")})
    assert rotated.current_key_id == "k2"
    assert rotated.open(key_id, token) == {"PatientID": "MRN-1"}
    assert "MRN-1" not in token


def test_a_series_waiting_for_review_keeps_every_file_however_old(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    upgrade(url)
    engine = make_engine(url)
    store = WorkStore(tmp_path / "work", tmp_path / "quarantine")
    waiting = _series(engine, Status.REVIEW, 400, None)
    store.quarantine_for(waiting).mkdir(parents=True)  # an image the OCR gate held
    (store.series_dir(waiting) / "deidentified").mkdir(parents=True)
    settings = load_settings(retain_originals_days=0, retain_quarantine_days=0,
                             retain_failed_work_days=0)
    report = purge(engine, store, settings)
    assert waiting not in report.quarantine + report.failed_work + report.originals
    assert store.quarantine_for(waiting).exists()
    assert (store.series_dir(waiting) / "deidentified").exists()
