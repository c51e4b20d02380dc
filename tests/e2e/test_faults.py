"""Delivery under faults: drains, dead letters, crashes at the worst moment, outages.

Each test runs the relay as separate processes on a RabbitMQ node and a PostgreSQL
cluster of its own (so restarting them disturbs nothing else) and a real Orthanc.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.pipeline import OPERATOR_TOKEN, api_get, corpus, wait_for_series
from tests.e2e.stack import Stack
from tests.support.dicom_factory import Patient, SeriesSpec, deliver, write_series
from tests.support.identifiers_service import identifiers_service
from tests.support.isolated import PrivatePostgres, PrivateRabbit
from tests.support.services import Orthanc, free_port, print_logs, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.rabbitmq, pytest.mark.postgres,
              pytest.mark.orthanc, pytest.mark.slow]


@pytest.fixture
def stack(tmp_path: Path, orthanc: Orthanc) -> Iterator[Stack]:
    rabbit, postgres = PrivateRabbit().start(), PrivatePostgres().start()
    made = Stack(tmp_path, orthanc, rabbit, postgres)
    try:
        yield made
    finally:
        made.down()
        print_logs(tmp_path.glob("*.log"))
        rabbit.destroy()
        postgres.destroy()


def _series_status(stack: Stack, series_id: int) -> str:
    return str(api_get(stack.api, f"/api/v1/series/{series_id}")["status"])


def _events(stack: Stack, series_id: int) -> str:
    detail = api_get(stack.api, f"/api/v1/series/{series_id}")
    return " | ".join(e["detail"] or "" for e in detail["events"])


def _first_series_id(stack: Stack) -> int:
    items: list[dict] = []

    def any_series() -> bool:
        nonlocal items
        try:
            items = api_get(stack.api, "/api/v1/series")["items"]
        except httpx.HTTPError:
            return False
        return bool(items)

    wait_until(any_series, 60, "the series to be recorded")
    return int(items[0]["id"])


def _deliver_series(stack: Stack, patient: Patient, instances: int) -> int:
    """Drop one series folder into incoming; its id once the relay has recorded it."""
    write_series(SeriesSpec(patient, instances=instances), stack.root / "s")
    deliver(stack.root / "s", stack.data_dir / "incoming")
    return _first_series_id(stack)


def test_sigterm_finishes_the_message_in_hand_and_exits_zero(stack: Stack) -> None:
    # The identifiers service answers after 3 s, so the signal lands mid-series on any
    # machine; the grace (20 s) is long enough to finish it.
    with identifiers_service(delay=3) as slow:
        stack.settings.update(identifiers_url=slow.url)
        stack.up()
        series_id = _deliver_series(stack, Patient("MRN-5", "Turing^Alan"), 40)
        wait_until(lambda: len(slow.calls) == 1, 60, "deid to ask for the identifiers")
        started = time.monotonic()
        assert stack.procs["deid0"].stop(signal.SIGTERM, timeout=60) == 0
        assert time.monotonic() - started < 20 + 15  # within RELAY_SHUTDOWN_GRACE, plus exit
        # Finished, not handed back: the series went on to the sender.
        assert _series_status(stack, series_id) in {"DONEPROCESSING", "SENT", "DONE"}
        assert _last_log_message(stack, "deid0") == \
            "stopped; the message in hand was finished first"
        wait_until(lambda: _series_status(stack, series_id) == "DONE", 120, "the series")
        assert len(slow.calls) == 1
    assert len(stack.orthanc.instances()) == 40


def _last_log_message(stack: Stack, name: str) -> str:
    last = (stack.root / f"{name}.log").read_text().strip().splitlines()[-1]
    return str(json.loads(last)["msg"])


def test_idle_services_stop_at_once_and_say_so(stack: Stack) -> None:
    stack.up()
    for name, proc in list(stack.procs.items()):
        started = time.monotonic()
        assert proc.stop(signal.SIGTERM) == 0
        assert time.monotonic() - started < 10  # no waiting out the grace (20 s)
        log = (stack.root / f"{name}.log").read_text()
        assert "grace ran out" not in log, name
        assert "color_message" not in log and "\x1b[" not in log, name  # JSON, not ANSI
        assert _last_log_message(stack, name) == "stopped; no message was in hand", name
    stack.procs.clear()


def test_dead_letter_then_retry_through_the_api(stack: Stack) -> None:
    stack.settings.update(max_attempts=2, retry_base_delay=0.2)
    dead_orthanc = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    stack.up()
    stack.procs["sender"].stop()
    stack.start("sender", orthanc_url=dead_orthanc)
    series_id = _deliver_series(stack, Patient("MRN-6", "Hopper^Grace"), 5)
    wait_until(lambda: _series_status(stack, series_id) == "FAILED", 60, "the dead letter")
    detail = api_get(stack.api, f"/api/v1/series/{series_id}")
    assert detail["stage"] == "send" and "orthanc unreachable" in detail["error"]
    # A quorum queue's count reaches rabbitmqctl with the next statistics round.
    wait_until(lambda: _queue_depth(stack.rabbit.node, "relay.send.dead") == 1, 30,
               "the message parked as dead")
    stack.procs["sender"].stop()
    stack.start("sender")  # the destination is back
    response = httpx.post(f"{stack.api}/api/v1/series/{series_id}/retry",
                          headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}, timeout=10)
    assert response.status_code == 202, response.text
    wait_until(lambda: _series_status(stack, series_id) == "DONE", 60, "the retried series")
    assert len(stack.orthanc.instances()) == 5


def test_a_series_that_brings_down_every_worker_ends_failed_not_looping(stack: Stack) -> None:
    """Each worker that takes the series is killed mid-series (as the kernel kills a
    process out of memory): the broker's redeliveries count as attempts, so after
    RELAY_MAX_ATTEMPTS of them the series is FAILED, its message parked as dead."""
    stack.settings.update(max_attempts=3, retry_base_delay=0.2)
    with identifiers_service(delay=30) as slow:
        stack.settings.update(identifiers_url=slow.url)
        stack.up()
        series_id = _deliver_series(stack, Patient("MRN-11", "Franklin^Rosalind"), 5)
        for taken in range(1, 4):
            wait_until(lambda taken=taken: len(slow.calls) == taken, 60,
                       f"a worker to take the series (time {taken})")
            stack.restart("deid0", "deid")  # SIGKILL, then a fresh worker
        wait_until(lambda: _series_status(stack, series_id) == "FAILED", 60, "the give-up")
        detail = api_get(stack.api, f"/api/v1/series/{series_id}")
        assert detail["stage"] == "deid" and "worker stopped" in detail["error"]
        # A quorum queue's count reaches rabbitmqctl with the next statistics round.
        wait_until(lambda: _queue_depth(stack.rabbit.node, "relay.deid.dead") == 1, 30,
                   "the message parked as dead")
        time.sleep(2)
        assert len(slow.calls) == 3  # taken three times, not a fourth


def _outage(stack: Stack, service: PrivateRabbit | PrivatePostgres) -> bool:
    """Stop a dependency for a few seconds; whether /readyz said so meanwhile."""
    service.stop()
    reported = _not_ready(stack)
    time.sleep(2)
    service.start()
    return reported


def _not_ready(stack: Stack) -> bool:
    """The api's readiness probe turns 503 within a few seconds of an outage."""
    def unready() -> bool:
        try:
            return httpx.get(f"{stack.api}/readyz", timeout=2).status_code == 503
        except httpx.HTTPError:
            return False
    try:
        wait_until(unready, 10, "/readyz to report the outage")
        return True
    except TimeoutError:
        return False


def _queue_depth(node: str, queue: str) -> int:
    out = subprocess.run(["rabbitmqctl", "-n", node, "list_queues", "-q", "name", "messages"],
                         capture_output=True, text=True, check=True).stdout
    depths = dict(line.split("\t") for line in out.strip().splitlines() if "\t" in line)
    return int(depths.get(queue, 0))


def test_a_crash_between_commit_and_publish_loses_nothing(stack: Stack) -> None:
    stack.up()
    stack.procs["deid0"].stop()
    crashing = stack.start("deid0", "deid", fault_exit_after_commit="deid")
    series_id = _deliver_series(stack, Patient("MRN-7", "Noether^Emmy"), 6)
    wait_until(lambda: not crashing.alive(), 60, "the injected crash")
    assert crashing.process is not None and crashing.process.returncode == 137
    # No deid runs any more: only the outbox sweep can have sent the committed work on.
    wait_until(lambda: _series_status(stack, series_id) == "DONE", 60, "the swept series")
    assert len(stack.orthanc.instances()) == 6


def test_kills_restarts_and_outages_lose_and_duplicate_nothing(stack: Stack) -> None:
    stack.up(deid_workers=2)
    _specs, folders = corpus(stack.root / "corpus", instances=10)
    more = [SeriesSpec(Patient(f"MRN-9{n}", f"Patient^Number{n}"), instances=10)
            for n in range(5)]
    for n, spec in enumerate(more):
        write_series(spec, stack.root / "corpus" / f"more-{n}")
        folders.append(stack.root / "corpus" / f"more-{n}")
    expected = 10 * len(folders)
    figures = {"series": len(folders), "instances": expected, "processes killed": 0,
               "broker restarts": 0, "database restarts": 0, "orthanc outages": 0}
    chaos_done = threading.Event()

    def chaos() -> None:
        rng = random.Random(20261122)
        try:
            for step in range(6):
                time.sleep(rng.uniform(1.0, 3.0))
                victim = rng.choice(["deid0", "deid1", "sender"])
                stack.restart(victim, "deid" if victim.startswith("deid") else "sender")
                figures["processes killed"] += 1
                if step == 1:
                    figures["not ready while broker down"] = _outage(stack, stack.rabbit)
                    figures["broker restarts"] += 1
                if step == 3:
                    figures["not ready while database down"] = _outage(stack, stack.postgres)
                    figures["database restarts"] += 1
                if step == 4:
                    stack.orthanc.stop()
                    time.sleep(15)
                    stack.orthanc.start()
                    figures["orthanc outages"] += 1
        finally:
            chaos_done.set()

    thread = threading.Thread(target=chaos)
    thread.start()
    for folder in folders:
        deliver(folder, stack.data_dir / "incoming")
        time.sleep(0.7)
    thread.join()
    series = wait_for_series(stack.api, len(folders), {"DONE", "FAILED"}, timeout=400)
    held = stack.orthanc.instances()
    sop_uids = [stack.orthanc.instance_tags(i)["SOPInstanceUID"] for i in held]
    done = [s for s in series if s["status"] == "DONE"]
    failed = [s for s in series if s["status"] == "FAILED"]
    figures.update({"series DONE": len(done), "series FAILED": len(failed),
                    "instances at Orthanc": len(held),
                    "lost": expected - len(set(sop_uids)),
                    "duplicated": len(sop_uids) - len(set(sop_uids))})
    print("\nfault drill:", ", ".join(f"{k} {v}" for k, v in figures.items()))
    assert all(s["error"] for s in failed), "a FAILED series must say why"
    assert figures["duplicated"] == 0
    assert len(done) == len(folders), failed
    assert figures["lost"] == 0
    assert figures["not ready while broker down"] is True
    assert figures["not ready while database down"] is True
    assert sum(s["image_count"] for s in series) == expected


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A real file system that fills up: a tmpfs of 3 MB (the machines run as root)."""
    mount_point = Path(tempfile.mkdtemp(prefix="relay-small-disk-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3M", "tmpfs", str(mount_point)],
                   check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
        mount_point.rmdir()


def test_a_full_disk_delays_a_series_and_loses_nothing(stack: Stack, small_disk: Path) -> None:
    stack.root = small_disk  # the work store, incoming and logs all on the small disk
    stack.settings.update(retry_base_delay=1)
    stack.up()
    # 150 instances of ~2.6 kB fill the disk twice over once copies are de-identified.
    spec = SeriesSpec(Patient("MRN-8", "Lamarr^Hedy"), instances=150)
    staging = Path(tempfile.mkdtemp(prefix="relay-src-"))
    write_series(spec, staging / "s")
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (3 * 1024 * 1024 - 1_000_000 - 60_000))
    deliver(staging / "s", stack.data_dir / "incoming")
    series_id = _first_series_id(stack)
    wait_until(lambda: "No space left on device" in _events(stack, series_id), 90,
               "the disk to fill")
    assert _series_status(stack, series_id) == "PROCESSING"  # waiting, not failed
    filler.unlink()  # an operator frees space
    subprocess.run(["mount", "-o", "remount,size=20M", str(small_disk)], check=True)
    wait_until(lambda: _series_status(stack, series_id) == "DONE", 240, "the series")
    detail = api_get(stack.api, f"/api/v1/series/{series_id}")
    assert detail["images_by_status"] == {"DONE": 150}
    assert len(stack.orthanc.instances()) == 150


def test_sigterm_hands_back_work_that_outlasts_the_grace(stack: Stack) -> None:
    # A slow identifiers service keeps deid inside a series for seconds, whatever the
    # machine's speed, the way a slow dependency does in production.
    with identifiers_service(delay=8) as slow:
        stack.settings.update(identifiers_url=slow.url)
        stack.up()
        stack.procs["deid0"].stop()
        stack.start("deid0", "deid", shutdown_grace=1)
        series_id = _deliver_series(stack, Patient("MRN-10", "Johnson^Katherine"), 20)
        wait_until(lambda: len(slow.calls) == 1, 60, "deid to ask for the identifiers")
        started = time.monotonic()
        assert stack.procs["deid0"].stop(signal.SIGTERM, timeout=60) == 0
        assert time.monotonic() - started < 1 + 5  # it did not wait for the answer (8 s)
        assert _series_status(stack, series_id) == "PROCESSING"
        assert _last_log_message(stack, "deid0") == \
            "shutdown grace ran out; the message in hand was handed back to its queue"
        stack.start("deid0", "deid")
        wait_until(lambda: _series_status(stack, series_id) == "DONE", 120, "the series")
        assert len(slow.calls) == 2  # asked again by the worker that took it back
    assert len(stack.orthanc.instances()) == 20
