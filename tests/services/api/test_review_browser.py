"""The review page in a real headless Chromium, against `relay api` in its own process:
a reviewer approves one series and rejects another; an admin sees the values before."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlmodel import Session, select

from relay_shared.db import session_scope
from relay_shared.models import Event, PixelRuleProposal, Series, Status
from relay_shared.runtime import Runtime
from tests.services.api.conftest import ARTIFACTS
from tests.services.api.review_support import ADA, GRACE, ct_series, series_under_review
from tests.services.api.seed import TOKEN_ENTRIES, TOKENS, make_runtime
from tests.support.services import RelayProcess, answers, free_port, relay_env, wait_until

pytestmark = [pytest.mark.slow]


@dataclass
class ReviewApi:
    url: str
    rt: Runtime
    to_approve: int
    to_reject: int


@pytest.fixture(scope="module")
def review_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReviewApi]:
    root = tmp_path_factory.mktemp("review-api")
    rt = make_runtime(root / "var")
    to_approve = series_under_review(rt, root, ct_series(ADA, instances=2))
    to_reject = series_under_review(rt, root, ct_series(GRACE, instances=2))
    with session_scope(rt.engine) as session:
        session.add(PixelRuleProposal(manufacturer="Novel Imaging", model="EchoStar 9",
                                      rows=160, columns=320, boxes=[[0, 0, 150, 40]],
                                      images_seen=2))
    port = free_port()
    env = relay_env({}, data_dir=root / "var", api_port=port, api_tokens=TOKEN_ENTRIES)
    proc = RelayProcess("api", env, root / "api.log").start()
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: answers(f"{url}/readyz", proc), 60, "relay api")
    yield ReviewApi(url, rt, to_approve, to_reject)
    proc.stop()
    rt.engine.dispose()


@pytest.fixture
def page(browser, review_api: ReviewApi):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(f"{review_api.url}/review")
    yield page
    context.close()


def _open(page, role: str, series_id: int) -> None:  # type: ignore[no-untyped-def]
    page.fill("#token", TOKENS[role])
    page.click("#login-form button")
    row = f"#waiting tr[data-series-id='{series_id}']"
    page.click(f"{row} button.open")
    page.wait_for_selector(f"#detail[data-series-id='{series_id}']")
    page.wait_for_selector("#attributes tbody tr")
    # Both frames drawn by the server and loaded as pictures.
    # (Polled from here: the page's policy refuses the eval Playwright's own polling uses.)
    wait_until(lambda: _pictures_drawn(page) == 2, 15, "both frames drawn")


def _pictures_drawn(page) -> int:  # type: ignore[no-untyped-def]
    return int(page.locator("#frames img").evaluate_all(
        "images => images.filter(i => i.complete && i.naturalWidth > 0).length"))


def _series(review_api: ReviewApi, series_id: int) -> Series:
    with Session(review_api.rt.engine) as session:
        series = session.get(Series, series_id)
        assert series is not None
        return series


def test_an_operator_is_turned_away(page) -> None:  # type: ignore[no-untyped-def]
    page.fill("#token", TOKENS["operator"])
    page.click("#login-form button")
    page.wait_for_selector("#login-error:has-text('needs the reviewer or admin role')")
    assert page.is_hidden("#board")


def test_a_reviewer_sees_the_series_and_approves_it(page, review_api: ReviewApi) -> None:  # type: ignore[no-untyped-def]
    _open(page, "reviewer", review_api.to_approve)
    name = page.locator("#attributes tr[data-path='(0010,0010)'] td")
    assert name.nth(4).text_content() == "replaced"
    assert name.nth(3).text_content().startswith("PSEUDONYM^")
    assert page.locator("#attributes th.admin-only").is_hidden()  # no before for a reviewer
    assert "Lovelace" not in page.content()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review.png"), full_page=True)
    page.click("#approve")
    page.wait_for_selector("#decision:has-text('approved: now DONEPROCESSING')")
    page.wait_for_selector(f"#waiting tr[data-series-id='{review_api.to_approve}']",
                           state="detached")
    assert page.is_disabled("#approve")
    series = _series(review_api, review_api.to_approve)
    assert series.status is Status.DONEPROCESSING
    with Session(review_api.rt.engine) as session:
        approved = list(session.exec(select(Event).where(
            Event.series_id == review_api.to_approve, Event.kind == "approved")))
        assert len(approved) == 1 and "(reviewer)" in (approved[0].detail or "")
    assert page.errors == []


def test_an_admin_sees_before_and_a_reviewer_rejects(page, review_api: ReviewApi) -> None:  # type: ignore[no-untyped-def]
    _open(page, "admin", review_api.to_reject)
    before = page.locator("#attributes tr[data-path='(0010,0010)'] td.admin-only")
    assert before.is_visible() and before.text_content() == "Hopper^Grace"
    page.click("#signout")
    # Whoever signs in next at this screen sees nothing of what the admin saw.
    page.wait_for_selector("#login", state="visible")
    assert page.is_hidden("#detail") and page.locator("#attributes tbody tr").count() == 0
    assert page.locator("#frames img").count() == 0
    assert "Hopper" not in page.content()
    _open(page, "reviewer", review_api.to_reject)
    page.fill("#reason", "a name is burned into frame 2")
    page.click("#reject-form button")
    page.wait_for_selector("#decision:has-text('rejected: now QUARANTINED')")
    page.screenshot(path=str(ARTIFACTS / "review-rejected.png"), full_page=True)
    series = _series(review_api, review_api.to_reject)
    assert series.status is Status.QUARANTINED
    assert series.error == "rejected in review: a name is burned into frame 2"
    assert page.errors == []


def test_an_admin_edits_and_accepts_a_learned_rule(browser, review_api: ReviewApi) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(f"{review_api.url}/review/pixel-rules")
    page.fill("#token", TOKENS["admin"])
    page.click("#login-form button")
    row = "#rules tr[data-rule-id='1']"
    page.wait_for_selector(f"{row} button.accept")
    assert page.input_value(f"{row} input.boxes") == "0, 0, 150, 40"
    page.fill(f"{row} input.boxes", "0, 0, 320, 44; 0, 150, 60, 10")
    page.check(f"{row} input.covers")
    page.click(f"{row} button.accept")
    page.wait_for_selector(f"{row} td.state:has-text('ACCEPTED')")
    page.click("#export")
    page.wait_for_selector("#download:not([hidden])")
    with Session(review_api.rt.engine) as session:
        rule = session.get(PixelRuleProposal, 1)
        assert rule is not None
        assert (rule.state, rule.boxes, rule.covers_text) == (
            "ACCEPTED", [[0, 0, 320, 44], [0, 150, 60, 10]], True)
    assert errors == []
    context.close()
