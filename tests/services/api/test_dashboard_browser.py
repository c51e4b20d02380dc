"""The dashboard in a real headless Chromium, against `relay api` in its own process."""

from __future__ import annotations

import pytest

from relay_shared.db import record_event, session_scope
from relay_shared.models import Image, Series, Status
from tests.services.api.conftest import ARTIFACTS, LiveApi
from tests.services.api.seed import TOKENS

pytestmark = [pytest.mark.slow]


@pytest.fixture
def page(browser, live_api: LiveApi):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(f"{live_api.url}/dashboard")
    yield page
    context.close()


def sign_in(page, role: str) -> None:  # type: ignore[no-untyped-def]
    page.fill("#token", TOKENS[role])
    page.click("#login-form button")
    page.wait_for_selector("#series tbody tr")


def test_a_wrong_token_is_refused(page) -> None:  # type: ignore[no-untyped-def]
    page.fill("#token", "not-a-token")
    page.click("#login-form button")
    page.wait_for_selector("#login-error:has-text('not valid')")
    assert page.is_hidden("#board")


def test_a_reader_sees_counts_series_and_failures_without_retry(
        page, live_api: LiveApi) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, "reader")
    assert page.text_content("#whoami") == "signed in as reader"
    assert page.text_content(".card[data-status='DONE'] b") == "2"
    assert page.text_content(".card[data-status='FAILED'] b") == "1"
    assert page.locator("#series tbody tr").count() == 5
    done_bar = page.locator(f"#series tr[data-series-id='{live_api.seeded.done}'] .bar")
    assert done_bar.get_attribute("aria-valuenow") == "100"
    failed = page.locator(f"#failures tr[data-series-id='{live_api.seeded.failed}']")
    assert "destination refused" in failed.text_content()
    assert "file ends early" in page.text_content(
        f"#failures tr[data-series-id='{live_api.seeded.partial}']")
    assert page.locator("button.retry").count() == 0
    assert page.errors == []


def test_an_operator_retries_and_the_page_refreshes_itself(
        page, live_api: LiveApi) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, "operator")
    row = f"#failures tr[data-series-id='{live_api.seeded.failed}']"
    page.wait_for_selector(f"{row} button.retry")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    page.click(f"{row} button.retry")
    page.click("#confirm-ok")
    page.wait_for_selector(f"{row}", state="detached")
    new_id = _add_series(live_api)
    # Nothing is clicked from here on: the page's own refresh must bring the new series.
    page.wait_for_selector(f"#series tr[data-series-id='{new_id}']", timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "dashboard-after-retry.png"), full_page=True)
    assert page.errors == []


def _add_series(live_api: LiveApi) -> int:
    with session_scope(live_api.rt.engine) as session:
        series = Series(series_uid="2.25.777", modality="US", status=Status.PROCESSING,
                        trace_id="traceadded")
        session.add(series)
        session.flush()
        session.add_all([Image(series_id=series.id, sop_uid=f"2.25.777.{n}") for n in range(3)])
        record_event(session, series.id, "ingest", "received", "3 new")
        assert series.id is not None
        return series.id
