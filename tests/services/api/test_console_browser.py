"""The operator console in a real headless Chromium, against `relay api` in its own
process over a seeded database: the series page, search, each action with its
confirmation, the chart, what each role may see and do, and an accessibility check
by axe-core on every page. Screenshots go to test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from relay_shared.db import record_event, session_scope
from relay_shared.models import (
    Delivery,
    Event,
    Image,
    Series,
    Stage,
    Status,
    Study,
    utcnow,
)
from relay_shared.pixels.records import held_path
from tests.services.api.conftest import ARTIFACTS, LiveApi
from tests.services.api.seed import TOKENS
from tests.shared.pixels.test_thumbnail import write_ct_slice
from tests.support.npm import npm_installed

pytestmark = [pytest.mark.slow]
AXE_FOLDER = Path(__file__).resolve().parent / "axe"
PAGING = 30  # series of the project "paging": more than one page of 25


@dataclass
class Console:
    api: LiveApi
    sent: int  # DONE, one image confirmed by one destination and refused by another
    retry: int  # FAILED while sending
    held_series: int  # HELD by its project
    held_images: int  # DONE with two images held for burned-in text
    release_image: int
    drop_image: int
    old: int  # arrived ten days ago, pseudonym PSEUDO-OLD


def _series(session: Session, uid: str, status: Status, **fields: object) -> Series:
    series = Series(series_uid=uid, status=status, trace_id="t" + uid[-8:], **fields)
    session.add(series)
    session.flush()
    return series


def _seed(api: LiveApi) -> Console:
    now = utcnow()
    with session_scope(api.rt.engine) as session:
        study = Study(study_uid="2.25.5001", patient_pseudonym="PSEUDO-CONSOLE")
        old_study = Study(study_uid="2.25.5002", patient_pseudonym="PSEUDO-OLD")
        session.add_all([study, old_study])
        session.flush()
        sent = _series(session, "2.25.5100", Status.DONE, study_id=study.id, modality="CT",
                       stage=Stage.SEND, project="trial-a")
        good, partly = Image(series_id=sent.id, sop_uid="2.25.5100.1", status=Status.DONE), \
            Image(series_id=sent.id, sop_uid="2.25.5100.2", status=Status.FAILED,
                  reason="SendError: association refused by the called AE")
        session.add_all([good, partly])
        session.flush()
        session.add_all([
            Delivery(image_id=good.id, series_id=sent.id, destination="orthanc",
                     state="CONFIRMED", attempts=1, confirmed_at=now),
            Delivery(image_id=partly.id, series_id=sent.id, destination="orthanc",
                     state="CONFIRMED", attempts=1, confirmed_at=now),
            Delivery(image_id=partly.id, series_id=sent.id, destination="dicom", state="FAILED",
                     attempts=3, error="association refused by the called AE")])
        for kind, detail in (("received", "2 new"), ("deidentified", "2 images"),
                             ("sent", "2 images"), ("done", "1 image not sent")):
            record_event(session, sent.id, "sender", kind, detail)
        retry = _series(session, "2.25.5200", Status.FAILED, study_id=study.id, modality="MR",
                        stage=Stage.SEND, project="trial-a",
                        error="SendError: destination refused")
        session.add(Image(series_id=retry.id, sop_uid="2.25.5200.1",
                          status=Status.DONEPROCESSING))
        record_event(session, retry.id, "sender", "failed", retry.error)
        held_series = _series(session, "2.25.5300", Status.HELD, study_id=study.id,
                              modality="US", project="trial-b",
                              error="held by project trial-b for review")
        session.add(Image(series_id=held_series.id, sop_uid="2.25.5300.1"))
        record_event(session, held_series.id, "deid", "held", held_series.error)
        held = _series(session, "2.25.5400", Status.DONE, study_id=study.id, modality="CT",
                       stage=Stage.SEND, project="trial-a")
        held_ids = []
        for n in range(2):
            image = Image(series_id=held.id, sop_uid=f"2.25.5400.{n}",
                          status=Status.QUARANTINED, pixel_gate="held",
                          pixel_flag="modality CT",
                          reason="burned-in text: OCR found text matching an original name")
            session.add(image)
            session.flush()
            assert image.id is not None and held.id is not None
            path = write_ct_slice(held_path(api.rt.store, held.id, image.id))
            image.quarantine_path = str(path)
            held_ids.append(image.id)
        old = _series(session, "2.25.5500", Status.DONE, study_id=old_study.id, modality="PT",
                      stage=Stage.SEND, project="trial-b", created_at=now - timedelta(days=10))
        paging = [_series(session, f"2.25.56{n:02d}", Status.DONE, modality="CT",
                          project="paging", stage=Stage.SEND) for n in range(PAGING)]
        # Finished in earlier intervals, for the chart.
        for series, hours_ago, kind in ((paging[0], 2, "done"), (paging[1], 2, "done"),
                                        (paging[2], 3, "failed"),
                                        (paging[3], 4, "quarantined")):
            session.add(Event(series_id=series.id, at=now - timedelta(hours=hours_ago),
                              service="sender", process="seed", kind=kind))
        ids = [sent.id, retry.id, held_series.id, held.id, *held_ids, old.id]
    return Console(api, *ids)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def console(live_api: LiveApi) -> Console:
    return _seed(live_api)


@pytest.fixture(scope="module")
def axe_source() -> str:
    return (npm_installed(AXE_FOLDER) / "axe-core" / "axe.min.js").read_text()


@pytest.fixture
def context(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    yield context
    context.close()


def open_as(context, console: Console, role: str, where: str = ""):  # type: ignore[no-untyped-def]
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(f"{console.api.url}/dashboard{where}")
    page.fill("#token", TOKENS[role])
    page.press("#token", "Enter")
    page.wait_for_selector("#whoami:has-text('signed in as')")
    return page


def no_axe_violations(page, axe_source: str, name: str) -> None:  # type: ignore[no-untyped-def]
    """axe-core's WCAG 2 A and AA rules over the page as it stands; page.evaluate is not
    bound by the page's script policy, so the page keeps its own."""
    page.evaluate(axe_source)
    result = page.evaluate("""() => axe.run(document, {runOnly: {type: 'tag',
        values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})""")
    problems = [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3])
                for v in result["violations"]]
    assert problems == [], f"{name}: {problems}"


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)


def announced(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_selector(f"#announce[role='status']:has-text({text!r})")


def clear(page) -> None:  # type: ignore[no-untyped-def]
    page.click("#search-clear")
    page.wait_for_selector("#search-view[data-query='']", state="attached")


def series_row(console: Console, series_id: int) -> Series:
    with Session(console.api.rt.engine) as session:
        series = session.get(Series, series_id)
        assert series is not None
        return series


def image_row(console: Console, image_id: int) -> Image:
    with Session(console.api.rt.engine) as session:
        image = session.get(Image, image_id)
        assert image is not None
        return image


def test_the_series_page_shows_timeline_images_destinations_and_reasons(
        context, console: Console, axe_source: str) -> None:  # type: ignore[no-untyped-def]
    page = open_as(context, console, "reader", f"#/series/{console.sent}")
    page.wait_for_selector("#series-timeline li")
    assert page.text_content("#series-title") == f"Series {console.sent}"
    assert page.text_content("#series-status") == "Done — 1 image(s) not sent"
    assert [k for k in page.eval_on_selector_all(
        "#series-timeline li", "items => items.map(i => i.dataset.kind)")] == [
        "received", "deidentified", "sent", "done"]
    refused = page.text_content("#series-images li[data-destination='dicom']")
    assert refused == "dicom: not confirmed (3 attempts) — association refused by the called AE"
    assert page.locator("#series-images li[data-destination='orthanc']").all_text_contents() \
        == ["orthanc: confirmed (1 attempt)"] * 2
    failure = page.text_content("#series-failures tbody tr")
    assert "Failed — will not retry (image.failed)" in failure
    assert "SendError: association refused by the called AE" in failure
    assert "PSEUDO-CONSOLE" in page.text_content("#series-facts")
    # The heading of a page opened takes the focus, for a screen reader to start there.
    assert page.evaluate("document.activeElement.id") == "series-title"
    # The first Tab reaches the skip link; it moves the focus and leaves the page open.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "board-main"
    assert page.url.endswith(f"#/series/{console.sent}")
    assert page.is_visible("#series-view")
    shot(page, "series-page")
    no_axe_violations(page, axe_source, "series page")
    assert page.errors == []


def test_search_filters_by_project_status_modality_pseudonym_and_dates_and_pages(
        context, console: Console, axe_source: str) -> None:  # type: ignore[no-untyped-def]
    page = open_as(context, console, "reader")
    page.click("#console-nav a[data-section='search-view']")
    page.wait_for_selector("#search-count:has-text('of')")
    page.fill("#filter-project", "paging")
    page.press("#filter-project", "Enter")  # the keyboard submits the form
    page.wait_for_selector("#search-count:has-text('Series 1\u201325 of 30')")
    assert "project=paging" in page.url
    assert set(page.locator("#search-results tbody td:nth-child(2)").all_text_contents()) \
        == {"paging"}
    page.click("#search-pages button:has-text('Next')")
    page.wait_for_selector("#search-count:has-text('Series 26\u201330 of 30')")
    assert page.locator("#search-results tbody tr").count() == 5
    assert page.is_disabled("#search-pages button:has-text('Next')")
    no_axe_violations(page, axe_source, "search results")

    clear(page)
    page.select_option("#filter-status", "FAILED")
    page.fill("#filter-modality", "mr")
    page.click("#search-form button[type='submit']")
    page.wait_for_selector("#search-count:has-text('of 1')")
    assert page.get_attribute("#search-results tbody tr", "data-series-id") == str(console.retry)
    assert page.text_content("#search-results tbody td[data-status]") \
        == "Failed while sending — will not retry by itself"

    day = (utcnow() - timedelta(days=10)).date().isoformat()
    clear(page)
    page.fill("#filter-pseudonym", "PSEUDO-OLD")
    page.fill("#filter-from", day)
    page.fill("#filter-to", day)
    page.click("#search-form button[type='submit']")
    page.wait_for_selector("#search-count:has-text('of 1')")
    assert page.get_attribute("#search-results tbody tr", "data-series-id") == str(console.old)
    page.fill("#filter-from", (utcnow() - timedelta(days=9)).date().isoformat())
    page.fill("#filter-to", utcnow().date().isoformat())
    page.click("#search-form button[type='submit']")
    page.wait_for_selector("#search-count:has-text('No series match')")
    assert page.is_hidden("#search-results")
    shot(page, "search")
    no_axe_violations(page, axe_source, "search")
    # A result opens its series page.
    clear(page)
    page.fill("#filter-pseudonym", "PSEUDO-OLD")
    page.click("#search-form button[type='submit']")
    page.click(f"#search-results a[href='#/series/{console.old}']")
    page.wait_for_selector(f"#series-title:has-text('Series {console.old}')")
    assert page.errors == []


def test_an_operator_retries_only_after_confirming(
        context, console: Console, axe_source: str) -> None:  # type: ignore[no-untyped-def]
    page = open_as(context, console, "operator", f"#/series/{console.retry}")
    retry = page.locator("#series-actions button.retry")
    retry.wait_for()
    # Cancelled with Escape: nothing changes.
    retry.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#confirm-dialog[open]")
    no_axe_violations(page, axe_source, "confirmation dialog")
    page.keyboard.press("Escape")
    announced(page, "Cancelled: nothing was changed.")
    assert series_row(console, console.retry).status is Status.FAILED
    assert page.evaluate("document.activeElement.className") == "retry"
    # Confirmed from the keyboard alone.
    page.keyboard.press("Space")
    page.wait_for_selector("#confirm-dialog[open]")
    shot(page, "retry-confirm")
    assert page.text_content("#confirm-ok") == f"Retry series {console.retry}"
    page.keyboard.press("Tab")  # from Cancel to the action
    page.keyboard.press("Enter")
    announced(page, f"Series {console.retry} is queued again from its send stage.")
    page.wait_for_selector("#series-status:has-text('De-identified, waiting to be sent')")
    assert series_row(console, console.retry).status is Status.DONEPROCESSING
    assert page.locator("#series-actions button").count() == 0
    # The button is gone with the action: the page's heading holds the focus instead.
    assert page.evaluate("document.activeElement.id") == "series-title"
    shot(page, "retry-done")
    assert page.errors == []


def test_an_admin_releases_a_held_image_after_seeing_its_thumbnail(
        context, console: Console, axe_source: str) -> None:  # type: ignore[no-untyped-def]
    page = open_as(context, console, "admin", f"#/series/{console.held_images}")
    row = f"#series-images tr[data-image-id='{console.release_image}']"
    page.wait_for_selector(f"{row} td:has-text('Held for review of burned-in text')")
    page.click(f"{row} button.review-image")
    page.wait_for_selector("#review-dialog[open]")
    page.wait_for_function("() => document.getElementById('review-image').naturalWidth > 0")
    assert page.get_attribute("#review-image", "alt") \
        == f"De-identified thumbnail of image {console.release_image}"
    # Drawn from the held (de-identified) file through a soft-tissue window: the four
    # bands of the slice from black (air) to white (bone).
    greys = page.evaluate("""() => {
        const img = document.getElementById('review-image');
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        const ctx = canvas.getContext('2d'); ctx.drawImage(img, 0, 0);
        const y = Math.floor(img.naturalHeight / 2), w = img.naturalWidth;
        return [1, 3, 5, 7].map(n => ctx.getImageData(Math.floor(n * w / 8), y, 1, 1).data[0]);
    }""")
    assert greys[0] == 0 and greys[3] == 255 and greys[0] < greys[1] < greys[2] < greys[3]
    # Release waits for the reviewer to say they looked.
    assert page.is_disabled("#review-release")
    page.check("#review-looked")
    assert page.is_enabled("#review-release")
    shot(page, "review-held-image")
    no_axe_violations(page, axe_source, "review dialog")
    page.click("#review-release")
    announced(page, f"Image {console.release_image} was released and is queued to be sent.")
    page.wait_for_selector(f"{row} td:has-text('De-identified, waiting to be sent')")
    image = image_row(console, console.release_image)
    assert image.status is Status.DONEPROCESSING and image.pixel_gate == "released"
    store = console.api.rt.store
    assert store.deidentified(console.held_images, console.release_image).exists()
    assert not held_path(store, console.held_images, console.release_image).exists()
    with Session(console.api.rt.engine) as session:
        kinds = {e.kind: e.detail or "" for e in session.exec(
            select(Event).where(Event.series_id == console.held_images))}
    assert f"thumbnail of held image {console.release_image}" in kinds["read"]
    assert "by token unnamed-admin-" in kinds["released"]
    shot(page, "released")
    assert page.errors == []


def test_an_admin_drops_a_held_image(context, console: Console) -> None:  # type: ignore[no-untyped-def]
    page = open_as(context, console, "admin", f"#/series/{console.held_images}")
    row = f"#series-images tr[data-image-id='{console.drop_image}']"
    page.click(f"{row} button.review-image")
    page.wait_for_function("() => document.getElementById('review-image').naturalWidth > 0")
    page.click("#review-drop")
    announced(page, f"Image {console.drop_image} was dropped: it will never be sent.")
    page.wait_for_selector(f"{row} td:has-text('Dropped after review of burned-in text')")
    assert page.locator(f"{row} button").count() == 0
    image = image_row(console, console.drop_image)
    assert image.status is Status.QUARANTINED and image.pixel_gate == "dropped"
    assert not held_path(console.api.rt.store, console.held_images, console.drop_image).exists()
    assert page.errors == []


def test_an_operator_drops_a_held_series_after_confirming(
        context, console: Console) -> None:  # type: ignore[no-untyped-def]
    page = open_as(context, console, "operator", f"#/series/{console.held_series}")
    page.wait_for_selector("#series-status:has-text('Held by its project')")
    page.click("#series-actions button.drop-series")
    assert "cannot be undone" in page.text_content("#confirm-text")
    page.click("#confirm-ok")
    announced(page, f"Series {console.held_series} was dropped.")
    page.wait_for_selector("#series-status:has-text('Dropped — sent nowhere')")
    assert series_row(console, console.held_series).status is Status.IGNORED
    assert page.is_hidden("#series-actions")
    assert page.errors == []


def test_the_overview_charts_series_finished_per_interval_and_the_queues(
        context, console: Console, axe_source: str) -> None:  # type: ignore[no-untyped-def]
    page = open_as(context, console, "reader")
    page.wait_for_selector("#throughput svg rect[data-status='DONE']")
    label = page.get_attribute("#throughput svg", "aria-label") or ""
    assert label.startswith("Series finished per 15 minutes:")
    # Done now: two series of the base seed and one of this module's; two hours ago, two.
    # Failed: one of each seed now, one three hours ago. (A test before may have dropped one.)
    assert label.startswith("Series finished per 15 minutes: 5 done, 3 failed, 1 quarantined, "
                            "1 held")
    # The hidden table holds the same figures as the bars.
    assert page.locator("#throughput tbody tr").count() == 24
    table_done = sum(int(t) for t in page.locator(
        "#throughput tbody td:nth-child(2)").all_text_contents())
    assert table_done == 5
    assert page.locator("#throughput svg rect[data-status='QUARANTINED']").count() == 1
    assert page.text_content("#queue-depths li[data-queue='relay.deid']") \
        == "relay.deid: 0 waiting"
    # Status cards in plain words, and no status name shown as it is stored.
    assert page.text_content(".card[data-status='DONEPROCESSING'] span") == "De-identified"
    assert "DONEPROCESSING" not in page.inner_text("#board")
    # The page refreshes itself under a keyboard user without moving their focus.
    page.focus(f"#series a[href='#/series/{console.sent}']")
    before = page.text_content("#updated")
    page.wait_for_function("(t) => document.getElementById('updated').textContent !== t",
                           arg=before, timeout=15_000)
    assert page.evaluate("document.activeElement.getAttribute('href')") \
        == f"#/series/{console.sent}"
    shot(page, "overview")
    no_axe_violations(page, axe_source, "overview")
    assert page.errors == []


ACTIONS = (("POST", "/api/v1/series/{retry}/retry"), ("POST", "/api/v1/series/{held}/drop"),
           ("POST", "/api/v1/series/{held}/release"), ("GET", "/api/v1/images/{image}/thumbnail"),
           ("POST", "/api/v1/images/{image}/release"), ("POST", "/api/v1/images/{image}/drop"))


@pytest.fixture
def fresh_targets(console: Console) -> Iterator[dict[str, int]]:
    """A failed series, a held series and a held image no earlier test has acted on."""
    with session_scope(console.api.rt.engine) as session:
        retry = _series(session, "2.25.5800", Status.FAILED, stage=Stage.SEND, modality="CT")
        held = _series(session, "2.25.5801", Status.HELD, modality="CT")
        done = _series(session, "2.25.5802", Status.DONE, stage=Stage.SEND, modality="CT")
        image = Image(series_id=done.id, sop_uid="2.25.5802.1", status=Status.QUARANTINED,
                      pixel_gate="held")
        session.add(image)
        session.flush()
        assert done.id is not None and image.id is not None
        image.quarantine_path = str(write_ct_slice(held_path(console.api.rt.store, done.id,
                                                             image.id)))
        targets = {"retry": retry.id, "held": held.id, "done": done.id, "image": image.id}
    yield targets  # type: ignore[misc]


def test_a_viewer_sees_no_action_and_the_api_refuses_each(
        context, console: Console, fresh_targets: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    page = open_as(context, console, "reader", f"#/series/{fresh_targets['retry']}")
    page.wait_for_selector("#series-status:has-text('Failed while sending')")
    for where in ("retry", "held", "done"):
        page.goto(f"{console.api.url}/dashboard#/series/{fresh_targets[where]}")
        # The whole page is drawn at once, with its title.
        page.wait_for_selector(f"#series-title:has-text('Series {fresh_targets[where]}')")
        assert page.locator("#series-view button:visible").count() == 0, where
    page.goto(f"{console.api.url}/dashboard#/")
    page.wait_for_selector("#failures tbody tr")
    assert page.locator("#board button").count() == 0
    shot(page, "viewer")
    assert page.errors == []
    # The same calls the buttons make, with the viewer's token, from the page itself.
    for method, template in ACTIONS:
        path = template.format(**fresh_targets)
        status = page.evaluate("""([method, path]) => fetch(path, {method, headers: {
            Authorization: 'Bearer ' + sessionStorage.getItem('relay-token')}})
            .then(r => r.status)""", [method, path])
        assert status == 403, path
    # An operator may retry and decide on held series, but not look at a held image.
    operator = open_as(context, console, "operator", f"#/series/{fresh_targets['done']}")
    operator.wait_for_selector("#series-images tbody tr")
    assert operator.locator("button.review-image").count() == 0
    for method, template in ACTIONS[3:]:
        status = operator.evaluate("""([method, path]) => fetch(path, {method, headers: {
            Authorization: 'Bearer ' + sessionStorage.getItem('relay-token')}})
            .then(r => r.status)""", [method, template.format(**fresh_targets)])
        assert status == 403, template
    assert series_row(console, fresh_targets["retry"]).status is Status.FAILED
    assert series_row(console, fresh_targets["held"]).status is Status.HELD
    assert image_row(console, fresh_targets["image"]).pixel_gate == "held"
