"""`relay mock-site` drives the whole pipeline, as separate processes, at a set rate.

The run lasts RELAY_TEST_MOCK_SITE_SECONDS (60 by default, to keep CI short; set 300
for the five-minute run). Its figures are printed (`pytest -s` shows them)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay_ingest import mocksite
from tests.e2e.pipeline import TOKEN_ENTRY, wait_for_series
from tests.support.services import (
    Orthanc,
    RelayProcess,
    answers,
    free_port,
    print_logs,
    relay_env,
    run_relay,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.orthanc,
              pytest.mark.slow]
SECONDS = float(os.environ.get("RELAY_TEST_MOCK_SITE_SECONDS", "60"))
STUDIES_PER_HOUR = 180.0  # one study every 20 seconds


@pytest.fixture
def relay(tmp_path: Path, data_dir: Path, postgres_url: str, queue_prefix: str,
          orthanc: Orthanc) -> Iterator[dict]:
    api_port, scp_port = free_port(), free_port()
    env = relay_env(
        {}, data_dir=data_dir, database_url=postgres_url, queue_prefix=queue_prefix,
        amqp_url="amqp://guest:guest@127.0.0.1:5672/", api_port=api_port,
        api_tokens=TOKEN_ENTRY, deid_secret="mock-site-secret-0123456789",
        orthanc_url=orthanc.url, retry_base_delay=0.5, watch_interval=0.2,
        scp_port=scp_port, stable_age=1)
    run_relay("db", "upgrade", env=env)
    procs = [RelayProcess(service, dict(env, RELAY_METRICS_PORT=str(free_port())),
                          tmp_path / f"{service}.log").start()
             for service in ("ingest", "deid", "sender", "api")]
    api = f"http://127.0.0.1:{api_port}"
    wait_until(lambda: answers(f"{api}/readyz"), 60, "the api")
    yield {"env": env, "api": api, "scp_port": scp_port}
    for proc in procs:
        proc.stop()
    print_logs(tmp_path.glob("*.log"))




def test_mock_site_run_reaches_the_destination_deidentified(relay: dict,
                                                            orthanc: Orthanc) -> None:
    relay_command = str(Path(sys.executable).with_name("relay"))
    result = subprocess.run(
        [relay_command, "mock-site", "--duration", str(SECONDS), "--studies-per-hour",
         str(STUDIES_PER_HOUR), "--modalities", "CT,MR,CR", "--series", "1-2",
         "--instances", "3-6", "--port", str(relay["scp_port"])],
        env=relay["env"], capture_output=True, text=True, timeout=SECONDS + 120, check=True)
    print(result.stdout)
    figures = {key: value for key, value in re.findall(r"^([a-z ]+): (.+)$", result.stdout,
                                                      re.MULTILINE)}
    studies, series, instances = (int(figures[k]) for k in ("studies", "series", "instances"))
    assert studies == int(SECONDS * STUDIES_PER_HOUR / 3600)
    assert figures["refused instances"] == "0" and figures["failed studies"] == "0"
    assert float(figures["elapsed seconds"]) >= SECONDS

    done = wait_for_series(relay["api"], series, {"DONE"})
    assert sum(s["image_count"] for s in done) == instances
    assert len(orthanc.instances()) == instances
    for instance_id in orthanc.instances()[:20]:
        tags = orthanc.instance_tags(instance_id)
        assert not any(name in str(tags.get("PatientName", "")) for name in mocksite.FAMILY)
        assert str(tags.get("InstitutionName", "")) not in mocksite.SITES
        assert "MOCKSITE 1.0" not in str(tags)
