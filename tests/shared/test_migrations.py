"""The migrations build exactly the tables the models describe, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import relay_shared.models  # noqa: F401  (registers every table)
from relay_shared.db import current_revision, head_revision, make_engine, upgrade


def _differences(url: str) -> list[object]:
    upgrade(url)
    engine = make_engine(url)
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    return list(diff)


def test_sqlite_schema_matches_the_models(tmp_path: Path) -> None:
    assert _differences(f"sqlite:///{tmp_path / 'relay.db'}") == []


@pytest.mark.postgres
def test_postgres_schema_matches_the_models(postgres_url: str) -> None:
    assert _differences(postgres_url) == []
