"""The SCP of ingest running in the test's own event loop, on a free loopback port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from relay_ingest import scp
from relay_shared.settings import Settings, load_settings
from tests.support.services import free_port


def scp_settings(data_dir: Path, **overrides: object) -> Settings:
    return load_settings(data_dir=data_dir, scp_port=free_port(), stable_age=0.5,
                         scp_ae_title="RELAYTEST", **overrides)


@pytest.fixture
async def running_scp(data_dir: Path) -> AsyncIterator[Callable[..., Settings]]:
    tasks: list[tuple[asyncio.Task[None], asyncio.Event]] = []

    async def start(**overrides: object) -> Settings:
        settings = scp_settings(data_dir, **overrides)
        settings.ensure_dirs()
        stop = asyncio.Event()
        tasks.append((asyncio.create_task(scp.serve(settings, stop)), stop))
        await asyncio.sleep(0.3)
        return settings

    yield start  # type: ignore[misc]
    for task, stop in tasks:
        stop.set()
        await task


def delivered(settings: Settings) -> list[Path]:
    assert settings.incoming_dir is not None
    return sorted(p for p in settings.incoming_dir.rglob("*.dcm"))


async def wait_for_files(settings: Settings, count: int, timeout: float = 20) -> list[Path]:
    for _ in range(int(timeout * 10)):
        if len(found := delivered(settings)) >= count:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{len(delivered(settings))} of {count} instances handed over")
