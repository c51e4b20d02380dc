"""The migrations build exactly the tables the models describe, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import Session, SQLModel, select

import relay_shared.models  # noqa: F401  (registers every table)
from relay_shared.db import (
    _alembic_config,
    current_revision,
    head_revision,
    make_engine,
    upgrade,
)
from relay_shared.models import Image, Series


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


def _image_columns(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return {column["name"] for column in inspect(engine).get_columns("image")}
    finally:
        engine.dispose()


def _content_blake3_round_trip(url: str) -> None:
    """0015 adds content_blake3 beside content_sha256 and takes it away again, keeping
    the SHA-256 of the images recorded before it and their rows."""
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        series = Series(trace_id="t" * 32)
        session.add(series)
        session.flush()
        assert series.id is not None
        session.add(Image(series_id=series.id, sop_uid="1.2.3", content_sha256="a" * 64,
                          content_blake3="b" * 64))
        session.commit()
    engine.dispose()
    assert {"content_sha256", "content_blake3"} <= _image_columns(url)

    # The same configuration `upgrade` uses.
    command.downgrade(_alembic_config(url), "0014")
    columns = _image_columns(url)
    assert "content_sha256" in columns and "content_blake3" not in columns
    engine = make_engine(url)
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT sop_uid, content_sha256 FROM image")).all()
        assert current_revision(engine) == "0014"
    engine.dispose()
    assert [tuple(row) for row in kept] == [("1.2.3", "a" * 64)]

    upgrade(url)
    assert "content_blake3" in _image_columns(url)
    engine = make_engine(url)
    with Session(engine) as session:
        (image,) = session.exec(select(Image)).all()
        assert image.content_blake3 is None and image.content_sha256 == "a" * 64
        assert current_revision(engine) == head_revision()
    engine.dispose()


def test_sqlite_content_blake3_upgrades_and_downgrades(tmp_path: Path) -> None:
    _content_blake3_round_trip(f"sqlite:///{tmp_path / 'relay.db'}")


@pytest.mark.postgres
def test_postgres_content_blake3_upgrades_and_downgrades(postgres_url: str) -> None:
    _content_blake3_round_trip(postgres_url)
