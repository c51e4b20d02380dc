"""The same scenario through `relay up` on the embedded defaults: SQLite, in-process bus, outbox."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.pipeline import TOKEN_ENTRY, api_get, assert_outbox_clean, corpus, wait_for_series
from tests.support.dicom_factory import deliver
from tests.support.services import (
    RelayProcess,
    answers,
    free_port,
    relay_env,
    run_relay,
    wait_until,
)

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def relay_up(tmp_path: Path) -> Iterator[dict]:
    api_port = free_port()
    # Only the api port and token are set: everything else is the embedded default,
    # relative to the working directory, as for a newcomer.
    env = relay_env({}, api_port=api_port, api_tokens=TOKEN_ENTRY, watch_interval=0.2)
    workdir = tmp_path / "checkout"
    workdir.mkdir()
    proc = RelayProcess("up", env, tmp_path / "up.log", cwd=workdir).start()
    api_url = f"http://127.0.0.1:{api_port}"
    wait_until(lambda: answers(f"{api_url}/readyz", proc), 60, "relay up")
    yield {"api": api_url, "var": workdir / "var", "tmp": tmp_path, "proc": proc, "env": env,
           "cwd": workdir}
    assert proc.stop() == 0, (tmp_path / "up.log").read_text()[-3000:]




def test_three_series_reach_done_in_the_outbox(relay_up: dict) -> None:
    specs, folders = corpus(relay_up["tmp"] / "corpus", instances=20)
    for folder in folders:
        # The documented way in: `relay submit`, from the same working directory.
        run_relay("submit", str(folder), env=relay_up["env"], cwd=relay_up["cwd"])
    series = wait_for_series(relay_up["api"], 3, {"DONE"})
    assert sorted(s["image_count"] for s in series) == [20, 20, 20]
    assert_outbox_clean(relay_up["var"] / "outbox", specs, expected=60)
    studies = api_get(relay_up["api"], "/api/v1/studies")["items"]
    assert len(studies) == 3
    assert len({s["patient_pseudonym"] for s in studies}) == 2  # two patients, two pseudonyms
    # Each series exported is an entry of the audit trail, the relay itself the actor.
    with sqlite3.connect(relay_up["var"] / "relay.db") as db:
        exports = db.execute("SELECT actor_kind, detail FROM auditrecord "
                             "WHERE action = 'export'").fetchall()
    assert len(exports) == 3
    assert all(kind == "system" and "20 instance(s)" in detail and "outbox" in detail
               for kind, detail in exports), exports


def test_same_folder_twice_adds_nothing(relay_up: dict) -> None:
    specs, folders = corpus(relay_up["tmp"] / "corpus", instances=20)
    deliver(folders[2], relay_up["var"] / "incoming")
    wait_for_series(relay_up["api"], 1, {"DONE"})
    deliver(folders[2], relay_up["var"] / "incoming")
    wait_until(lambda: not any((relay_up["var"] / "incoming").iterdir()), 60, "second delivery")
    series = wait_for_series(relay_up["api"], 1, {"DONE"})
    assert len(series) == 1 and series[0]["image_count"] == 20
    assert_outbox_clean(relay_up["var"] / "outbox", specs, expected=20)
