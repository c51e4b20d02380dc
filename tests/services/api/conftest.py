from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from relay_shared.runtime import Runtime
from tests.services.api.seed import Seeded, make_runtime, seed


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = make_runtime(tmp_path / "var")
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def seeded(rt: Runtime) -> Seeded:
    return seed(rt.engine)
