"""`relay up` with a webhook: series that reach DONE through the real pipeline are
announced to a receiver on loopback, signed, with no original value in the body; and
the process's /metrics shows the latency to DONE and its dependencies as reachable."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.e2e.pipeline import TOKEN_ENTRY, corpus, wait_for_series
from tests.support.services import (
    RelayProcess,
    answers,
    free_port,
    relay_env,
    run_relay,
    wait_until,
)
from tests.support.webhook_receiver import Receiver

pytestmark = [pytest.mark.e2e]
SECRET = "pipeline-webhook-secret"


def test_done_series_are_announced_and_measured(tmp_path: Path) -> None:
    receiver = Receiver(free_port(), SECRET.encode()).start()
    api_port = free_port()
    hooks = [{"name": "lab", "url": receiver.url, "events": ["series.done"]}]
    env = relay_env({}, api_port=api_port, api_tokens=TOKEN_ENTRY, watch_interval=0.2,
                    data_dir=tmp_path / "var", webhooks=json.dumps(hooks),
                    webhook_secret=SECRET, webhook_poll_interval=0.2)
    proc = RelayProcess("up", env, tmp_path / "up.log").start()
    api = f"http://127.0.0.1:{api_port}"
    try:
        wait_until(lambda: answers(f"{api}/readyz", proc), 60, "relay up")
        specs, folders = corpus(tmp_path / "corpus", instances=3)
        for folder in folders:
            run_relay("submit", str(folder), env=env)
        series = wait_for_series(api, 3, {"DONE"})
        wait_until(lambda: len(receiver.accepted) == 3, 60, "three notifications")
        announced = {a["body"]["series"]["id"] for a in receiver.accepted}
        assert announced == {s["id"] for s in series}
        assert {a["body"]["images"]["DONE"] for a in receiver.accepted} == {3}
        sent = json.dumps([a["body"] for a in receiver.accepted])
        for spec in specs:
            for original in [*spec.patient.identifying_values(), spec.series_uid,
                             spec.study_uid]:
                assert original not in sent
        metrics = httpx.get(f"{api}/metrics", timeout=10).text
        assert 'relay_series_done_seconds_count{project="default"} 3.0' in metrics
        assert 'relay_dependency_up{dependency="database"} 1.0' in metrics
        assert 'relay_series_finished_total{status="DONE"} 3.0' in metrics
    finally:
        assert proc.stop() == 0, (tmp_path / "up.log").read_text()[-3000:]
        receiver.stop()
