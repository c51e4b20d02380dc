"""The api records worklists without the deid secret: their lookup keys come from the
vault, and survive a rotation of its keys."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from relay_api.main import create_app
from relay_shared.db import session_scope
from relay_shared.models import CollectionRow, RowState
from relay_shared.signing import new_private_pem
from tests.services.api.seed import TOKENS, make_runtime

OLD_KEY = "k1:" + base64.urlsafe_b64encode(bytes(range(32))).decode()
NEW_KEY = "k2:" + base64.urlsafe_b64encode(bytes(range(32, 64))).decode()
WORKLIST = {"csv": "accession_number\nACC-ROTATE-1\n"}


def operator(tmp_path: Path, keys: str) -> TestClient:
    runtime = make_runtime(tmp_path / "var", env="production", identifier_keys=keys,
                           signing_key=new_private_pem())
    return TestClient(create_app(runtime),
                      headers={"Authorization": f"Bearer {TOKENS['operator']}"})


def test_a_production_api_without_the_deid_secret_records_a_worklist(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELAY_DEID_SECRET", raising=False)
    answer = operator(tmp_path, OLD_KEY).post("/api/v1/collections", json=WORKLIST)
    assert answer.status_code == 202, answer.text


def test_a_row_collected_before_a_key_rotation_is_still_recognised(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELAY_DEID_SECRET", raising=False)
    assert operator(tmp_path, OLD_KEY).post("/api/v1/collections",
                                            json=WORKLIST).status_code == 202
    runtime = make_runtime(tmp_path / "var", identifier_keys=OLD_KEY)
    with session_scope(runtime.engine) as session:
        for row in session.exec(select(CollectionRow)):
            row.state = RowState.DONE.value
    again = operator(tmp_path, f"{NEW_KEY},{OLD_KEY}").post("/api/v1/collections",
                                                            json=WORKLIST)
    (row,) = again.json()["rows"]
    assert row["state"] == "DONE" and row["reason"].startswith("collected already")



def test_a_worklist_with_a_bare_carriage_return_is_read_as_lines(tmp_path: Path) -> None:
    """A worklist saved on an old Mac (CR line ends), or CR inside a line: rows, never a
    server error."""
    answer = operator(tmp_path, OLD_KEY).post("/api/v1/collections",
                                              json={**WORKLIST, "csv": "ACC-1\rACC-2\r"})
    assert answer.status_code == 202, answer.text
    assert len(answer.json()["rows"]) == 2


@pytest.mark.parametrize(("field", "value", "where"), [
    ("csv", "accession_number\nACC-\x00-1\n", "line 2"),
    ("csv", "ACC-1\nACC-\x1b-2\n", "line 2"),
    ("csv", "ACC-1\nACC-\x91-2\n", "line 2"),  # a C1 control, as Windows-1252 misread
    ("name", "list\x00one", "name"),
])
def test_a_worklist_with_a_control_character_is_refused_by_name(
        tmp_path: Path, field: str, value: str, where: str) -> None:
    """A NUL cannot be stored in a PostgreSQL text column: it must be refused with the
    line it is on, not reach the database as a server error."""
    answer = operator(tmp_path, OLD_KEY).post("/api/v1/collections",
                                              json={**WORKLIST, field: value})
    assert answer.status_code == 422, answer.text
    assert where in answer.text and "control character" in answer.text
    assert "ACC-" not in answer.text
