from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from tests.support import services

# In CI the generated examples are the same every run, so a red build is reproducible;
# on a developer's machine they vary, to keep finding new cases.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url, drop = services.create_database()
    yield url
    drop()


@pytest.fixture
def queue_prefix() -> Iterator[str]:
    services.ensure_rabbitmq()
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    yield prefix
    services.delete_queues(prefix)


@pytest.fixture(scope="session")
def orthanc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Orthanc]:
    server = services.Orthanc(tmp_path_factory.mktemp("orthanc")).start()
    yield server
    server.stop()


@pytest.fixture
def orthanc(orthanc_server: services.Orthanc) -> services.Orthanc:
    orthanc_server.clear()
    return orthanc_server


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "var"
    path.mkdir()
    return path
