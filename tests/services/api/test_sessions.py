"""Dashboard sessions on a real database: a session ends when its person has done nothing
for the idle time, the page's own refreshes do not keep it alive, and activity never
stretches it past its whole lifetime."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from relay_api.auth import Role
from relay_api.guard import person_acted
from relay_api.oidc import User
from relay_api.sessions import Sessions
from tests.services.api.seed import make_runtime

ALICE = User(subject="alice-subject", name="alice", role=Role.ADMIN)


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    rt = make_runtime(tmp_path / "var")
    yield rt.engine
    rt.engine.dispose()


def test_a_session_nobody_uses_ends_after_the_idle_time(engine) -> None:  # type: ignore[no-untyped-def]
    sessions = Sessions(engine, max_age_s=60, idle_s=1.5)
    cookie = sessions.start(ALICE)
    time.sleep(0.8)
    assert sessions.user(cookie, active=False) == ALICE  # a refresh of the page
    time.sleep(0.9)
    assert sessions.user(cookie, active=False) is None
    assert sessions.user(cookie, active=True) is None  # activity cannot bring it back


def test_activity_keeps_a_session_alive(engine) -> None:  # type: ignore[no-untyped-def]
    sessions = Sessions(engine, max_age_s=60, idle_s=1.5)
    cookie = sessions.start(ALICE)
    time.sleep(0.8)
    assert sessions.user(cookie, active=True) == ALICE
    time.sleep(0.9)  # 1.7 s after the sign-in, 0.9 s after the person last acted
    assert sessions.user(cookie) == ALICE


def test_activity_never_stretches_a_session_past_its_lifetime(engine) -> None:  # type: ignore[no-untyped-def]
    sessions = Sessions(engine, max_age_s=2.0, idle_s=1.5)
    cookie = sessions.start(ALICE)
    for _ in range(2):
        time.sleep(0.8)
        assert sessions.user(cookie, active=True) == ALICE
    time.sleep(0.6)  # 2.2 s after the sign-in
    assert sessions.user(cookie, active=True) is None


def _scope(*headers: tuple[bytes, bytes]) -> dict[str, object]:
    return {"type": "http", "headers": list(headers)}


def test_only_the_console_saying_a_person_acted_counts_as_activity() -> None:
    dashboard, activity = (b"x-relay-dashboard", b"1"), (b"x-relay-activity", b"1")
    assert person_acted(_scope(dashboard, activity))
    assert not person_acted(_scope(dashboard))  # the page refreshing on its own
    assert not person_acted(_scope(activity))  # not from the console
