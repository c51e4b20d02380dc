"""Signing in to the dashboard through a real OpenID provider (oidc-provider on
loopback), in a real headless Chromium, against `relay api` in its own process: the
authorization code flow with PKCE, the session cookie, roles from the groups, a
refused and a cancelled sign-in, signing out, and each in the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.services.api.conftest import ARTIFACTS
from tests.services.api.seed import TOKEN_ENTRIES, TOKENS, Seeded, make_runtime, seed
from tests.support.oidc_provider import (
    AUDIENCE,
    CLIENT_ID,
    CLIENT_SECRET,
    ROLE_MAP,
    USERS,
    OidcProvider,
)
from tests.support.services import (
    RelayProcess,
    answers,
    free_port,
    relay_env,
    wait_until,
)

pytestmark = [pytest.mark.oidc, pytest.mark.slow]
SHOTS = ARTIFACTS / "oidc"
# The same headless Chromium as the dashboard's own tests (a module fixture).


@dataclass
class Site:
    url: str
    seeded: Seeded
    provider: OidcProvider

    def trail(self, **filters: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/admin/audit", params=filters,
                             headers={"Authorization": f"Bearer {TOKENS['admin']}"})
        response.raise_for_status()
        return response.json()["items"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("oidc-site")
    port = free_port()
    provider = OidcProvider(root / "provider",
                            [f"http://127.0.0.1:{port}/dashboard/callback"]).start()
    runtime = make_runtime(root / "var")
    seeded = seed(runtime.engine)
    runtime.engine.dispose()
    env = relay_env({}, data_dir=root / "var", api_port=port, api_tokens=TOKEN_ENTRIES,
                    oidc_issuer=provider.issuer, oidc_client_id=CLIENT_ID,
                    oidc_client_secret=CLIENT_SECRET, oidc_audience=AUDIENCE,
                    oidc_scopes="openid profile groups relay", oidc_role_map=ROLE_MAP)
    proc = RelayProcess("api", env, root / "api.log").start()
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: answers(f"{url}/readyz", proc), 60, "relay api")
    yield Site(url, seeded, provider)
    proc.stop()
    provider.stop()


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{site.url}/dashboard")
    yield page
    context.close()


def sign_in_at_provider(page: Any, user: str, password: str | None = None) -> None:
    page.click("#oidc-signin")
    page.wait_for_selector("#username")
    page.fill("#username", user)
    page.fill("#password", password or USERS[user]["password"])
    page.click("#sign-in")


def shoot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def fetch(page: Any, method: str, path: str, dashboard_header: bool = True) -> int:
    """A request from the page, as its own script makes them (the cookie goes along)."""
    headers = {"X-Relay-Dashboard": "1"} if dashboard_header else {}
    return int(page.evaluate(
        "async ([method, path, headers]) => (await fetch(path, {method, headers, "
        "credentials: 'same-origin'})).status", [method, path, headers]))


def test_an_admin_signs_in_at_the_provider_and_the_cookie_is_safe(
        page: Any, site: Site) -> None:
    shoot(page, "1-sign-in-page")
    sign_in_at_provider(page, "alice")
    page.wait_for_selector("#whoami:has-text('alice')")
    assert page.text_content("#whoami") == "signed in as alice (admin)"
    page.wait_for_selector("#series tbody tr")
    shoot(page, "2-signed-in-as-admin")
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "relay-session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # the page's script cannot read it
    assert fetch(page, "GET", "/api/v1/admin/identifiers") == 200
    # Without the header only the dashboard sends, a cookie alone does not act.
    assert fetch(page, "POST", f"/api/v1/series/{site.seeded.failed}/retry",
                 dashboard_header=False) == 403
    signed_in = site.trail(actor="alice", action="sign-in", outcome="success")
    assert signed_in and signed_in[0]["role"] == "admin"
    assert signed_in[0]["address"] == "127.0.0.1"


def test_a_viewer_reads_but_cannot_act_as_admin(page: Any, site: Site) -> None:
    sign_in_at_provider(page, "victor")
    page.wait_for_selector("#whoami:has-text('victor')")
    assert page.text_content("#whoami") == "signed in as victor (reader)"
    page.wait_for_selector("#failures tbody tr")
    assert page.locator("button.retry").count() == 0
    shoot(page, "3-signed-in-as-viewer")
    assert fetch(page, "GET", "/api/v1/series") == 200
    assert fetch(page, "GET", "/api/v1/admin/identifiers") == 403
    assert fetch(page, "POST", f"/api/v1/series/{site.seeded.failed}/retry") == 403
    denied = site.trail(actor="victor", action="denied")
    assert len(denied) >= 2 and {d["outcome"] for d in denied} == {"failure"}


def test_a_cancelled_sign_in_is_refused_and_recorded(page: Any, site: Site) -> None:
    page.click("#oidc-signin")
    page.wait_for_selector("#cancel")
    page.click("#cancel")
    page.wait_for_selector("#signin-failed", state="visible")
    assert page.is_hidden("#board")
    shoot(page, "4-sign-in-cancelled")
    refused = site.trail(action="sign-in", outcome="failure")
    assert any("access_denied" in str(r["detail"]) for r in refused), refused


def test_a_user_whose_groups_give_no_role_is_not_signed_in(page: Any, site: Site) -> None:
    sign_in_at_provider(page, "nora")
    page.wait_for_selector("#signin-failed", state="visible")
    assert page.is_hidden("#board")
    refused = site.trail(actor="nora", action="sign-in", outcome="failure")
    assert refused and "relay role" in str(refused[0]["detail"])


def test_a_forged_callback_is_refused(page: Any, site: Site) -> None:
    """A callback this browser did not start (a link from someone else) signs no one in."""
    page.goto(f"{site.url}/dashboard/callback?code=stolen&state=made-up")
    page.wait_for_selector("#signin-failed", state="visible")
    assert not [c for c in page.context.cookies() if c["name"] == "relay-session"]


def test_signing_out_ends_the_session(page: Any, site: Site) -> None:
    sign_in_at_provider(page, "alice")
    page.wait_for_selector("#whoami:has-text('alice')")
    page.click("#signout")
    page.wait_for_selector("#login", state="visible")
    wait_until(lambda: bool(site.trail(actor="alice", action="sign-out")), 10, "sign-out")
    assert fetch(page, "GET", "/api/v1/me") == 401
    shoot(page, "5-signed-out")
    page.goto(f"{site.url}/dashboard")
    page.wait_for_selector("#login", state="visible")
    assert page.is_hidden("#board")



def test_a_reviewer_signs_in_on_the_review_page_and_comes_back_to_it(
        browser: Any, site: Site) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    # Only what the page's script did not handle; a 401 before sign-in is how it asks.
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{site.url}/review")
    sign_in_at_provider(page, "rita")
    page.wait_for_selector("#whoami:has-text('rita')")
    assert page.url == f"{site.url}/review"
    assert page.text_content("#whoami") == "signed in as rita (reviewer)"
    page.wait_for_selector("#none-waiting", state="visible")
    shoot(page, "6-reviewer-on-the-review-page")
    # The review API answers the page's own requests; a decision by cookie alone, without
    # the header only the relay's pages send, is refused before any route.
    assert fetch(page, "GET", "/api/v1/review") == 200
    assert fetch(page, "POST", "/api/v1/review/999999/approve", dashboard_header=False) == 403
    page.click("#signout")
    page.wait_for_selector("#login", state="visible")
    wait_until(lambda: bool(site.trail(actor="rita", action="sign-out")), 10, "sign-out")
    assert fetch(page, "GET", "/api/v1/me") == 401
    assert errors == []
    context.close()


def test_a_reader_is_turned_away_from_the_review_page(browser: Any, site: Site) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{site.url}/review")
    sign_in_at_provider(page, "victor")
    page.wait_for_selector("#login-error:has-text('needs the reviewer or admin role')")
    assert page.url == f"{site.url}/review"
    assert page.is_hidden("#board")
    context.close()


def test_a_sign_in_goes_back_only_to_a_page_of_the_relay(site: Site) -> None:
    off_site = httpx.get(f"{site.url}/dashboard/login", params={"to": "https://elsewhere.test"})
    assert off_site.status_code == 422
    to_review = httpx.get(f"{site.url}/dashboard/login", params={"to": "pixel-rules"})
    assert to_review.status_code == 303
    assert to_review.cookies.get("relay-signin-to") == "pixel-rules"
