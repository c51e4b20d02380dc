from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from relay_shared.runtime import Runtime
from tests.services.api.seed import TOKEN_ENTRIES, Seeded, make_runtime, seed
from tests.support.services import (
    RelayProcess,
    answers,
    ensure_debian_packages,
    free_port,
    relay_env,
    wait_until,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# Screenshots of the console, kept for a person to look at (gitignored).
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(tmp_path / "var")
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def seeded(rt: Runtime) -> Seeded:
    return seed(rt.engine)


@dataclass
class LiveApi:
    url: str
    rt: Runtime
    seeded: Seeded
    log: Path


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    """`relay api` as its own process on a free loopback port, over a seeded SQLite database."""
    root = tmp_path_factory.mktemp("live-api")
    runtime = make_runtime(root / "var")
    seeded_ids = seed(runtime.engine)
    port = free_port()
    env = relay_env({}, data_dir=root / "var", api_port=port, api_tokens=TOKEN_ENTRIES)
    proc = RelayProcess("api", env, root / "api.log").start()
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: answers(f"{url}/readyz", proc), 60, "relay api")
    yield LiveApi(url, runtime, seeded_ids, root / "api.log")
    proc.stop()
    runtime.engine.dispose()



@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium, headless, driven by Playwright."""
    ensure_debian_packages((CHROMIUM, "chromium"))
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
