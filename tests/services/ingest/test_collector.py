"""Worklists and the collector's row states, against a fake PACS on a real SQLite database."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from sqlmodel import Session, select

from relay_ingest.collector import Collector, requeue_interrupted, settle
from relay_ingest.pacs import PacsError, RateLimit, Retrieved
from relay_ingest.worklist import Query, WorklistError, create_collection, parse_worklist
from relay_shared.db import make_engine, session_scope, upgrade
from relay_shared.deid import Pseudonymizer
from relay_shared.models import CollectionRow, RowState, Series, Status, utcnow
from relay_shared.runtime import make_vault
from relay_shared.settings import load_settings

PSEUDONYMIZER = Pseudonymizer(b"collector-test-secret")


class FakePacs:
    """Studies by accession number, each with its series; C-MOVE counts what it sends."""

    def __init__(self, studies: dict[str, list[tuple[str, list[str]]]]) -> None:
        self.studies = studies
        self.moved: list[str] = []
        self.fail_move = 0
        self.refuse: str | None = None

    def find(self, query: Dataset) -> list[Dataset]:
        if self.refuse:
            raise PacsError(self.refuse)
        if query.QueryRetrieveLevel == "STUDY":
            return [_ds(StudyInstanceUID=uid) for uid, _ in
                    self.studies.get(query.AccessionNumber, [])]
        return [_ds(SeriesInstanceUID=s, NumberOfSeriesRelatedInstances=3)
                for studies in self.studies.values() for uid, series in studies
                if uid == query.StudyInstanceUID for s in series]

    def move(self, study_uid: str, destination: str) -> Retrieved:
        self.moved.append(study_uid)
        return Retrieved(completed=3, failed=self.fail_move, warning=0)


def _ds(**values: object) -> Dataset:
    ds = Dataset()
    for key, value in values.items():
        setattr(ds, key, value)
    return ds


@pytest.fixture
def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = load_settings(data_dir=tmp_path / "var", pacs_host="127.0.0.1",
                             deid_secret="collector-test-secret-0123")
    url = settings.sqlalchemy_url
    settings.ensure_dirs()
    upgrade(url)
    engine = make_engine(url)
    vault = make_vault(settings)
    collector = Collector(settings, engine, vault, PSEUDONYMIZER.uid)
    collector.pacs = FakePacs({"ACC-1": [("1.2.1", ["1.2.1.1", "1.2.1.2"])],
                               "ACC-TWIN": [("1.2.2", ["1.2.2.1"]), ("1.2.3", ["1.2.3.1"])]})
    return engine, vault, collector


def _rows(engine) -> list[CollectionRow]:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return list(session.exec(select(CollectionRow).order_by(CollectionRow.id)))


def _run(world, *accessions: str) -> list[CollectionRow]:  # type: ignore[no-untyped-def]
    engine, vault, collector = world
    create_collection(engine, vault, "test",
                      [Query(accession=a) for a in accessions])
    for row in _rows(engine):
        if row.state == RowState.QUEUED.value:
            collector.collect_row(row.id)
    return _rows(engine)


def test_worklists_with_and_without_a_header() -> None:
    assert parse_worklist("ACC-1\nACC-2\n\n") == [Query(accession="ACC-1"),
                                                  Query(accession="ACC-2")]
    assert parse_worklist("Accession Number,comment\nACC-1,x\n") == [Query(accession="ACC-1")]
    assert parse_worklist("patient_id,date_from,date_to\nMRN-1,20240101,20241231\n") == [
        Query(patient_id="MRN-1", date_from="20240101", date_to="20241231")]


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"), ("accession_number\n", "no rows"), ("ACC*\n", "wildcards"),
    ("patient_id,date_from\nMRN-1,2024-01-01\n", "YYYYMMDD"),
    ("patient_id,accession,note\n,,seen\n", "neither"),
    ("ACC-1\n" + "MRN" * 50_000 + "\n", "line 2: not CSV"),
])
def test_a_bad_worklist_names_its_line_and_never_its_values(text: str, message: str) -> None:
    with pytest.raises(WorklistError, match=message) as caught:
        parse_worklist(text)
    assert "ACC" not in str(caught.value) and "MRN" not in str(caught.value)


def test_row_states_found_missing_ambiguous(world) -> None:  # type: ignore[no-untyped-def]
    rows = _run(world, "ACC-1", "ACC-NONE", "ACC-TWIN")
    assert [r.state for r in rows] == ["RETRIEVING", "NOT_FOUND", "AMBIGUOUS"]
    assert rows[0].retrieved_at is not None and rows[0].instances == 6
    assert rows[0].series_uids == [PSEUDONYMIZER.uid("1.2.1.1"), PSEUDONYMIZER.uid("1.2.1.2")]
    assert world[2].pacs.moved == ["1.2.1"]  # the ambiguous studies are left alone
    assert all("ACC" not in (r.query_encrypted or "") for r in rows)


def test_a_row_is_done_once_its_series_are_and_a_rerun_skips_it(world) -> None:  # type: ignore[no-untyped-def]
    engine = world[0]
    (row,) = _run(world, "ACC-1")
    assert settle(engine, 3600) == 0
    with session_scope(engine) as session:
        for uid in row.series_uids:
            session.add(Series(series_uid=uid, status=Status.DONE, trace_id="t"))
    assert settle(engine, 3600) == 1
    assert _rows(engine)[0].state == "DONE"
    again = _run(world, "ACC-1")[1]
    assert again.state == "DONE" and again.reason == "collected already (collection 1, row 1)"
    assert world[2].pacs.moved == ["1.2.1"]


def test_a_failed_series_or_a_wait_that_runs_out_fails_the_row(world) -> None:  # type: ignore[no-untyped-def]
    engine = world[0]
    (row,) = _run(world, "ACC-1")
    with session_scope(engine) as session:
        session.add(Series(series_uid=row.series_uids[0], status=Status.FAILED, trace_id="t"))
    settle(engine, 3600)
    assert _rows(engine)[0].reason == "1 of 2 series failed in the relay"
    (_, late) = _run(world, "ACC-1")
    with session_scope(engine) as session:
        session.exec(select(Series)).one().status = Status.PROCESSING  # retried, still going
        session.get(CollectionRow, late.id).retrieved_at = utcnow() - timedelta(hours=2)  # type: ignore[union-attr]
    settle(engine, 3600)
    assert _rows(engine)[1].state == "FAILED"
    assert "when the wait ran out" in (_rows(engine)[1].reason or "")


def test_pacs_refusals_and_lost_instances_fail_the_row_with_the_reason(world) -> None:  # type: ignore[no-untyped-def]
    world[2].pacs.fail_move = 2
    (row,) = _run(world, "ACC-1")
    assert (row.state, row.reason) == ("FAILED", "the PACS could not send 2 instance(s)")
    world[2].pacs.refuse = "the PACS refused the C-FIND: status 0xA700"
    row = _run(world, "ACC-TWIN")[1]
    assert (row.state, row.reason) == ("FAILED", "the PACS refused the C-FIND: status 0xA700")


def test_rows_a_stopped_process_had_in_hand_are_queued_again(world) -> None:  # type: ignore[no-untyped-def]
    engine, vault, _ = world
    create_collection(engine, vault, "test", [Query(accession="ACC-1")])
    with session_scope(engine) as session:
        session.exec(select(CollectionRow)).one().state = RowState.RETRIEVING.value
    assert requeue_interrupted(engine) == 1
    assert _rows(engine)[0].state == "QUEUED"


def test_the_rate_limit_spaces_requests() -> None:
    limit = RateLimit(20)
    start = time.monotonic()
    for _ in range(5):
        limit.wait()
    assert time.monotonic() - start >= 0.19


def test_relay_collect_records_a_worklist_and_refuses_a_bad_one(tmp_path: Path,
                                                                monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from relay_cli.main import app

    monkeypatch.setenv("RELAY_DATA_DIR", str(tmp_path / "var"))
    (tmp_path / "var").mkdir()
    upgrade(load_settings().sqlalchemy_url)
    good, bad = tmp_path / "cohort.csv", tmp_path / "bad.csv"
    good.write_text("accession_number\nACC-1\nACC-2\n")
    bad.write_text("accession_number\nACC-*\n")
    runner = CliRunner()
    result = runner.invoke(app, ["collect", str(good), "--no-wait"])
    assert result.exit_code == 0, result.output
    assert "collection 1: 2 row(s)" in result.output
    result = runner.invoke(app, ["collect", str(bad)])
    assert result.exit_code == 2 and "line 2" in result.output
    assert "ACC-*" not in result.output
    result = runner.invoke(app, ["collect", str(good), "--timeout", "0"])
    assert result.exit_code == 1  # nothing collects in this test: the rows are still QUEUED
    assert "ACC-1" in result.output and "QUEUED" in result.output
