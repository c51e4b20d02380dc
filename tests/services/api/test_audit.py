"""Named tokens, and an event with the token's name, time and address for every read
of identifying data and every retry or release."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from relay_api.auth import TokenConfigError, hash_token, parse_entries
from relay_api.main import create_app
from relay_shared.runtime import Runtime
from tests.services.api.seed import Seeded, make_runtime, seed

ALICE, BOB = "alice-admin-token-for-tests", "bob-operator-token-for-tests"
OLD_FORM = "unnamed-reader-token-for-tests"
ENTRIES = (f"alice@privacy:admin:{hash_token(ALICE)},bob:operator:{hash_token(BOB)},"
           f"reader:{hash_token(OLD_FORM)}")


@pytest.fixture
def named(tmp_path: Path) -> tuple[Runtime, Seeded]:
    runtime = make_runtime(tmp_path / "var")
    runtime.settings.api_tokens = ENTRIES.split(",")
    return runtime, seed(runtime.engine)


def as_(runtime: Runtime, token: str) -> TestClient:
    return TestClient(create_app(runtime), headers={"Authorization": f"Bearer {token}"})


def test_token_entries_carry_a_name_and_the_unnamed_form_still_works() -> None:
    alice, bob, old = parse_entries(ENTRIES.split(","))
    assert (alice.name, alice.role.name) == ("alice@privacy", "ADMIN")
    assert (bob.name, bob.role.name) == ("bob", "OPERATOR")
    assert old.name is None and old.label.startswith("unnamed-reader-")


def test_two_tokens_with_one_name_are_refused() -> None:
    with pytest.raises(TokenConfigError, match="bob"):
        parse_entries([f"bob:reader:{hash_token('a')}", f"bob:admin:{hash_token('b')}"])


def trail(runtime: Runtime, kind: str) -> list[str]:
    events = as_(runtime, ALICE).get("/api/v1/admin/events", params={"kind": kind}).json()
    return [e["detail"] for e in events["items"]]


@pytest.mark.parametrize("path", ["/api/v1/admin/identifiers",
                                  "/api/v1/admin/series/{done}/audit",
                                  "/api/v1/admin/events"])
def test_an_admin_read_of_identifying_data_is_an_event_naming_the_token(
        named: tuple[Runtime, Seeded], path: str) -> None:
    runtime, seeded = named
    assert as_(runtime, ALICE).get(path.format(done=seeded.done)).status_code == 200
    details = trail(runtime, "read")
    assert any("by token alice@privacy (admin) from testclient" in d for d in details), details


def test_a_retry_is_an_event_naming_the_token(named: tuple[Runtime, Seeded]) -> None:
    runtime, seeded = named
    assert as_(runtime, BOB).post(f"/api/v1/series/{seeded.failed}/retry").status_code == 202
    (detail,) = trail(runtime, "retry")
    assert "by token bob (operator) from testclient" in detail


def test_a_reader_cannot_read_the_trail(named: tuple[Runtime, Seeded]) -> None:
    runtime, _ = named
    assert as_(runtime, OLD_FORM).get("/api/v1/admin/events").status_code == 403


def audit_trail(runtime: Runtime, action: str) -> list[dict[str, object]]:
    page = as_(runtime, ALICE).get("/api/v1/admin/audit", params={"action": action}).json()
    return page["items"]  # type: ignore[no-any-return]


def test_a_notification_sent_again_is_in_the_audit_trail(
        named: tuple[Runtime, Seeded]) -> None:
    from relay_shared.db import session_scope
    from relay_shared.models import Notification, NotificationState

    runtime, seeded = named
    with session_scope(runtime.engine) as session:
        row = Notification(hook="research", event="series.failed", series_id=seeded.failed,
                           body="{}", state=NotificationState.GAVE_UP.value, attempts=12)
        session.add(row)
        session.flush()
        notification_id = row.id
    response = as_(runtime, BOB).post(f"/api/v1/notifications/{notification_id}/retry")
    assert response.status_code == 200
    (entry,) = audit_trail(runtime, "retry")
    assert (entry["actor"], entry["actor_kind"], entry["role"]) == ("bob", "token", "operator")
    assert entry["series_id"] == seeded.failed and "research" in str(entry["detail"])


def test_the_audit_trail_records_reads_refusals_and_denials(
        named: tuple[Runtime, Seeded]) -> None:
    runtime, _ = named
    assert as_(runtime, "not-a-token").get("/api/v1/series").status_code == 401
    assert as_(runtime, OLD_FORM).get("/api/v1/admin/identifiers").status_code == 403
    assert as_(runtime, ALICE).get("/api/v1/admin/identifiers").status_code == 200
    (refused,) = audit_trail(runtime, "sign-in")
    assert refused["outcome"] == "failure" and refused["address"] == "testclient"
    (denied,) = audit_trail(runtime, "denied")
    assert str(denied["actor"]).startswith("unnamed-reader-")
    assert "/api/v1/admin/identifiers" in str(denied["detail"])
    reads = audit_trail(runtime, "read")  # the mapping, then the two reads of the trail
    assert [r["detail"].split(":")[0] for r in reads] == [  # type: ignore[union-attr]
        "audit trail", "audit trail", "identifier mapping"]
    assert {r["actor"] for r in reads} == {"alice@privacy"}
    assert "not-a-token" not in str(audit_trail(runtime, "sign-in"))
