"""A database URL that names a primary and its standbys."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from relay_shared.db import make_engine
from relay_shared.db import postgres_url as multi_host_url
from tests.support.services import free_port


def test_libpq_host_list_becomes_hosts_tried_in_turn_for_a_writable_one() -> None:
    url = multi_host_url("postgresql+psycopg://relay:pw@db-a:5432,db-b:5433/relay")
    assert url.query["host"] == ("db-a:5432", "db-b:5433")
    assert url.query["target_session_attrs"] == "read-write"
    assert (url.username, url.password, url.database) == ("relay", "pw", "relay")


def test_sqlalchemy_host_list_is_kept_and_the_url_wins_over_the_defaults() -> None:
    url = multi_host_url("postgresql+psycopg://relay@/relay?host=db-a&host=db-b"
                       "&target_session_attrs=primary&connect_timeout=3")
    assert url.query["host"] == ("db-a", "db-b")
    assert url.query["target_session_attrs"] == "primary"
    assert url.query["connect_timeout"] == "3"


def test_one_host_gets_timeouts_that_notice_a_vanished_server() -> None:
    url = multi_host_url("postgresql+psycopg://relay@db:5432/relay")
    assert url.host == "db" and "target_session_attrs" not in url.query
    assert url.query["connect_timeout"] == "10" and url.query["keepalives"] == "1"


@pytest.mark.postgres
def test_a_listed_host_that_is_down_is_passed_over(postgres_url: str) -> None:
    database = postgres_url.rsplit("/", 1)[1]
    down = free_port()
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{down},127.0.0.1:5432/"
                         f"{database}")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT inet_server_port()")).scalar_one() == 5432
    engine.dispose()
