"""`relay status` against `relay api` in its own process."""

from __future__ import annotations

import threading
import time

import pytest
from sqlmodel import select

from relay_shared.db import session_scope
from relay_shared.models import Image, Series, Status
from tests.services.api.conftest import LiveApi
from tests.services.api.seed import TOKENS
from tests.support.services import relay_env, run_relay

pytestmark = [pytest.mark.slow]


def _status(live_api: LiveApi, *args: str, token: str = TOKENS["reader"], check: bool = True):  # type: ignore[no-untyped-def]
    env = relay_env({"RELAY_API_TOKEN": token, "COLUMNS": "160"})
    return run_relay("status", "--url", live_api.url, *args, env=env, check=check)


def test_status_prints_counts_series_failures_and_a_bar(live_api: LiveApi) -> None:
    out = _status(live_api, "--no-follow").stdout
    assert "Series by status" in out and "Latest series" in out and "Failures" in out
    assert "destination refused" in out
    assert "PSEUDO-AAAA" in out
    assert "in flight: 1 series, 5 images" in out  # the seeded PROCESSING series
    print(out)  # shown with -s: what a person sees


def test_status_refuses_a_bad_token_plainly(live_api: LiveApi) -> None:
    result = _status(live_api, token="wrong", check=False)
    assert result.returncode == 1
    assert "refused the token" in result.stderr and "Traceback" not in result.stderr


def test_status_follows_until_nothing_is_in_flight(live_api: LiveApi) -> None:
    finisher = threading.Thread(target=_finish_in_flight, args=(live_api, 2.0))
    finisher.start()
    started = time.monotonic()
    out = _status(live_api, "--follow", "--interval", "0.3", "--timeout", "60").stdout
    finisher.join()
    assert time.monotonic() - started >= 2.0
    assert "nothing in flight" in out
    assert "in flight:" not in out  # the table printed at the end has none left


def _finish_in_flight(live_api: LiveApi, after: float) -> None:
    time.sleep(after)
    with session_scope(live_api.rt.engine) as session:
        for series in session.exec(select(Series).where(Series.status == Status.PROCESSING)):
            series.status = Status.DONE
            for image in session.exec(select(Image).where(Image.series_id == series.id)):
                image.status = Status.DONE


def test_status_says_how_many_series_wait_for_review(live_api: LiveApi) -> None:
    with session_scope(live_api.rt.engine) as session:
        series = session.get(Series, live_api.seeded.done)
        assert series is not None
        series.status = Status.REVIEW
    try:
        out = _status(live_api, "--no-follow").stdout
        assert "1 waiting for review" in out
    finally:
        with session_scope(live_api.rt.engine) as session:
            series = session.get(Series, live_api.seeded.done)
            assert series is not None
            series.status = Status.DONE
