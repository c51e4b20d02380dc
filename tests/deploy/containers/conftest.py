"""The relay's image, built once per session and shared by every container test.

Building costs minutes on a CI machine: the stand-in base is kept between runs
(an existing tag is not rebuilt) and podman's layer cache keeps the dependency
layer while pyproject.toml is unchanged, so a code change rebuilds only the rest.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import containers

TIMINGS: dict[str, float] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "deploy/containers/" in str(item.fspath):
            item.add_marker(pytest.mark.podman)


@pytest.fixture(scope="session")
def podman_ready() -> None:
    reason = containers.why_podman_cannot_run()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def relay_image(podman_ready: None) -> Iterator[str]:
    started = time.monotonic()
    containers.ensure_standin_base(containers.base_image(containers.ROOT / "Dockerfile"))
    TIMINGS["stand-in base (cached after the first run)"] = time.monotonic() - started
    TIMINGS["image build"] = containers.build(containers.ROOT, containers.RELAY_IMAGE)
    yield containers.RELAY_IMAGE


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return containers.data_volume(tmp_path / "data")


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    for what, seconds in TIMINGS.items():
        terminalreporter.write_line(f"container tests: {what}: {seconds:.0f} s")
