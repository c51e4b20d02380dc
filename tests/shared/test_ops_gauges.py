"""The certificate gauge reports the soonest expiry in each configured PEM file."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from relay_shared import ops_gauges
from relay_shared.settings import load_settings
from tests.support.certs import Pki

DAY = 86400


def not_after(certificate: str) -> float | None:
    return REGISTRY.get_sample_value("relay_certificate_not_after_timestamp_seconds",
                                     {"certificate": certificate})


def test_a_chain_is_as_good_as_its_first_certificate_to_expire(tmp_path: Path):
    pki = Pki(tmp_path / "pki")  # the CA lasts 30 days, its leaves 7
    leaf = pki.issue("scp", "relay")
    chain = tmp_path / "chain.pem"
    chain.write_bytes(pki.ca.read_bytes() + leaf.cert.read_bytes())
    ops_gauges.record_certificates(load_settings(scp_tls_cert=chain, scp_tls_key=leaf.key,
                                                 dicom_tls_ca=pki.ca))
    scp, ca = not_after("scp_tls_cert"), not_after("dicom_tls_ca")
    assert scp is not None and ca is not None
    assert abs(scp - (time.time() + 7 * DAY)) < 600
    assert abs(ca - (time.time() + 30 * DAY)) < 600


def test_an_unreadable_file_is_no_figure_rather_than_a_crash(tmp_path: Path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    assert ops_gauges.earliest_not_after(garbage) is None
    assert ops_gauges.earliest_not_after(tmp_path / "missing.pem") is None


def test_dependencies_are_one_or_zero():
    ops_gauges.record_dependencies(database=True, broker=False)
    assert REGISTRY.get_sample_value("relay_dependency_up", {"dependency": "database"}) == 1
    assert REGISTRY.get_sample_value("relay_dependency_up", {"dependency": "broker"}) == 0


def dependency(name: str) -> float | None:
    return REGISTRY.get_sample_value("relay_dependency_up", {"dependency": name})


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_a_lost_database_and_broker_show_as_unreachable(tmp_path: Path):
    from relay_shared.amqp import AmqpBus
    from relay_shared.bus import RetryPolicy
    from relay_shared.db import make_engine, upgrade
    from relay_shared.runtime import refresh_gauges
    from tests.support import services

    url, drop = services.create_database()
    upgrade(url)
    services.ensure_rabbitmq()
    bus = AmqpBus(services.AMQP_URL, RetryPolicy(max_attempts=1))
    settings = load_settings(data_dir=tmp_path, database_url=url)
    engine = make_engine(url)

    async def refresh_twice() -> tuple[tuple, tuple]:
        await bus.connect()
        await refresh_gauges(settings, engine, bus)
        up = (dependency("database"), dependency("broker"))
        drop()  # the database goes away, as a failed-over primary would
        await bus.close()
        await refresh_gauges(settings, engine, bus)
        return up, (dependency("database"), dependency("broker"))

    try:
        assert asyncio.run(refresh_twice()) == ((1, 1), (0, 0))
    finally:
        engine.dispose()
        drop()
