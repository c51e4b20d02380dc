"""The whole pipeline on real RabbitMQ, PostgreSQL and Orthanc, against its baselines.

One run, one machine, the same files for every row:
  baselines   plain pydicom read + write; Orthanc's own REST upload (1 and 4 connections)
  embedded    `relay up` on its defaults (SQLite, its queue file, the outbox folder, a deid
              process per core): first file in incoming -> last series DONE
  pipeline    first file in incoming -> last series DONE at Orthanc, 1 deid worker and 1
              sender, then 2 and 2; each stage's rate from the series' event history,
              peak memory per process
  deid drain  a queued backlog de-identified by 1 worker, then by 2 (nothing else running)
  memory      optional: peak memory of the deid worker on one long series
  bus         messages through the relay's bus, quorum queues (as it runs) against
              classic queues, publish confirmed and consume acked (--only-bus: just these)

    .venv/bin/python bench/pipeline_bench.py --instances 1000 --series 20 --memory-series 2000
    .venv/bin/python bench/pipeline_bench.py --instances 200 --series 4 --rounds 1
    .venv/bin/python bench/pipeline_bench.py --only-bus --bus-cluster --bus-messages 1000

It is a benchmark, not a test: on a shared machine compare rows of the same run only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import psycopg
from pydicom import dcmread
from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from relay_shared import amqp
from relay_shared.amqp import AmqpBus, Topology
from relay_shared.bus import RetryPolicy
from relay_shared.messages import SeriesMessage
from tests.support.dicom_factory import Patient, SeriesSpec, make_instance
from tests.support.services import (
    AMQP_URL,
    Orthanc,
    RelayProcess,
    answers,
    create_database,
    delete_queues,
    free_port,
    relay_env,
    run_relay,
    wait_until,
)


def make_corpus(root: Path, series: int, per_series: int, seed: int) -> list[Path]:
    """512x512 16-bit CT series with identifying values in many places, the same every
    time for one seed (UIDs derived from it, pixel noise seeded)."""
    folders = []
    rng = np.random.default_rng(seed)
    for n in range(series):
        patient = Patient(f"MRN-{seed}-{n % 3}", f"Bench^Patient{n % 3}", accession=f"A{seed}{n}")
        spec = SeriesSpec(patient, instances=per_series, rows=512, columns=512,
                          study_uid=generate_uid(entropy_srcs=[str(seed), "study", str(n % 3)]),
                          series_uid=generate_uid(entropy_srcs=[str(seed), "series", str(n)]),
                          # One source each: generate_uid joins its sources, so (7, 1, 10)
                          # and (7, 11, 0) were the same UID, 40 conflicts in 1,000.
                          sop_uids=[generate_uid(entropy_srcs=[f"{seed}:{n}:{i}"])
                                    for i in range(per_series)])
        folder = root / f"series-{n:03d}"
        folder.mkdir(parents=True)
        noise = rng.integers(0, 4000, (512, 512), dtype=np.uint16).tobytes()
        for i in range(per_series):
            ds = make_instance(spec, i)
            ds.PixelData = noise
            ds.save_as(folder / f"IM{i:05d}.dcm", enforce_file_format=True)
        folders.append(folder)
    return folders


def files_of(folders: list[Path]) -> list[Path]:
    return [p for folder in folders for p in sorted(folder.iterdir())]


def pydicom_rate(files: list[Path], out: Path) -> float:
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for n, path in enumerate(files):
        dcmread(path).save_as(out / f"{n}.dcm")
    rate = len(files) / (time.perf_counter() - started)
    shutil.rmtree(out)  # rounds of 0.5 GB each would fill the disk
    return rate


def orthanc_upload_rate(orthanc: Orthanc, files: list[Path], connections: int) -> float:
    orthanc.clear()
    client = httpx.Client(base_url=orthanc.url, timeout=60,
                          limits=httpx.Limits(max_connections=connections))

    def upload(path: Path) -> None:
        client.post("/instances", content=path.read_bytes()).raise_for_status()

    started = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(upload, files))
    elapsed = time.perf_counter() - started
    client.close()
    return len(files) / elapsed


@dataclass
class Run:
    rate: float
    stage_rates: dict[str, float] = field(default_factory=dict)
    peak_mb: dict[str, float] = field(default_factory=dict)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Pipeline:
    """Relay processes on a fresh database and fresh queues."""

    def __init__(self, root: Path, orthanc: Orthanc) -> None:
        self.root, self.orthanc = root, orthanc
        self.url, self._drop = create_database()
        self.prefix = f"bench-{uuid.uuid4().hex[:8]}"
        self.data = root / "var"
        self.env = relay_env({}, data_dir=self.data, database_url=self.url, amqp_url=AMQP_URL,
                             queue_prefix=self.prefix, orthanc_url=orthanc.url,
                             deid_secret="benchmark-secret-0123456789", watch_interval=0.2,
                             log_level="WARNING", api_port=free_port())
        run_relay("db", "upgrade", env=self.env)
        self.procs: dict[str, RelayProcess] = {}
        self.probe_ports: dict[str, int] = {}

    def start(self, name: str, service: str, **settings: str) -> None:
        self.probe_ports[name] = free_port()
        env = dict(self.env, RELAY_METRICS_PORT=str(self.probe_ports[name]),
                   **{f"RELAY_{k.upper()}": v for k, v in settings.items()})
        self.procs[name] = RelayProcess(service, env, self.root / f"{name}.log").start()

    def wait_ready(self) -> None:
        """Start-up (imports, connections) is not the pipeline's throughput."""
        def ready(port: int) -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False
        for name, port in self.probe_ports.items():
            wait_until(lambda port=port: ready(port), 120, f"{name} to be ready")

    def event_span(self, first_kind: str, last_kind: str) -> float:
        with psycopg.connect(self.url.replace("+psycopg", "")) as conn:
            row = conn.execute(
                "SELECT min(at) FILTER (WHERE kind = %s), max(at) FILTER (WHERE kind = %s) "
                "FROM event", (first_kind, last_kind)).fetchone()
        assert row is not None and row[0] is not None and row[1] is not None
        return float((row[1] - row[0]).total_seconds())

    def series_ids(self, status: str) -> list[int]:
        with psycopg.connect(self.url.replace("+psycopg", "")) as conn:
            rows = conn.execute("SELECT id FROM series WHERE status = %s ORDER BY id",
                                (status,)).fetchall()
        return [int(row[0]) for row in rows]

    def count(self, status: str) -> int:
        with psycopg.connect(self.url.replace("+psycopg", "")) as conn:
            row = conn.execute("SELECT count(*) FROM series WHERE status = %s",
                               (status,)).fetchone()
        return int(row[0]) if row else 0

    def stage_rates(self, instances: int) -> dict[str, float]:
        """Each stage's instances over the span from its first series taken to its last
        finished (stages overlap, so these are rates while busy, not shares of the total)."""
        spans = {"deid": ("started", "deidentified"), "send": ("deidentified", "done")}
        return {stage: instances / max(self.event_span(*kinds), 1e-3)
                for stage, kinds in spans.items()}

    def peaks(self) -> dict[str, float]:
        return {name: peak_rss_mb(p.process.pid) for name, p in self.procs.items()
                if p.process is not None}

    def close(self) -> None:
        for proc in self.procs.values():
            proc.stop()
        delete_queues(self.prefix)
        self._drop()


def deliver_all(folders: list[Path], incoming: Path) -> None:
    incoming.mkdir(parents=True, exist_ok=True)
    for folder in folders:
        partial = incoming / f"{folder.name}.tmp{uuid.uuid4().hex[:6]}"
        shutil.copytree(folder, partial)
    for partial in sorted(incoming.iterdir()):
        partial.rename(partial.with_name(partial.name.split(".tmp")[0]))


def embedded_run(root: Path, folders: list[Path], workers: int | None) -> float:
    """`relay up` as a newcomer runs it, timed from the renames into incoming to the
    last series DONE in its SQLite database."""
    data = root / "var"
    api_port = free_port()
    # INFO: the workers say when they consume (a few lines per series besides).
    env = relay_env({}, data_dir=data, deid_secret="benchmark-secret-0123456789",
                    watch_interval=0.2, log_level="INFO", api_port=api_port)
    args = [] if workers is None else ["--workers", str(workers)]
    log = root / "up.log"
    proc = RelayProcess("up", env, log, args=args)
    root.mkdir(parents=True, exist_ok=True)
    proc.start()
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{api_port}/readyz", proc), 120,
                   "relay up")
        # Its deid processes start beside it: their start-up is not the throughput.
        expected = workers or len(os.sched_getaffinity(0))
        if expected > 1:  # with one, deid runs in `relay up` itself, ready with it
            wait_until(lambda: sum('"consuming"' in line and ".deid" in line
                                   for line in log.read_text().splitlines()) >= expected,
                       120, "the deid workers")
        staged = root / "staged"
        deliver_all(folders, staged)
        (data / "incoming").mkdir(parents=True, exist_ok=True)

        def done() -> int:
            with sqlite3.connect(data / "relay.db") as db:
                row = db.execute("SELECT count(*) FROM series WHERE status = 'DONE'").fetchone()
            return int(row[0])

        started = time.perf_counter()
        for folder in sorted(staged.iterdir()):
            folder.rename(data / "incoming" / folder.name)
        wait_until(lambda: done() == len(folders), 3600, "relay up", 0.1)
        return len(files_of(folders)) / (time.perf_counter() - started)
    finally:
        proc.stop()
        shutil.rmtree(root, ignore_errors=True)


def pipeline_run(root: Path, orthanc: Orthanc, folders: list[Path], workers: int,
                 senders: int = 1) -> Run:
    orthanc.clear()
    pipe = Pipeline(root, orthanc)
    try:
        for name, service in [("ingest", "ingest"),
                              *[(f"sender{n}", "sender") for n in range(senders)],
                              *[(f"deid{n}", "deid") for n in range(workers)]]:
            pipe.start(name, service)
        pipe.wait_ready()
        instances = len(files_of(folders))
        staged = root / "staged"
        # Copies are made first, outside the clock; renames put them in at once.
        deliver_all(folders, staged)
        (pipe.data / "incoming").mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        for folder in sorted(staged.iterdir()):
            folder.rename(pipe.data / "incoming" / folder.name)
        wait_until(lambda: pipe.count("DONE") == len(folders), 3600, "the pipeline", 0.2)
        elapsed = time.perf_counter() - started
        return Run(instances / elapsed, pipe.stage_rates(instances), pipe.peaks())
    finally:
        pipe.close()
        shutil.rmtree(root, ignore_errors=True)


def deid_drain(root: Path, orthanc: Orthanc, folders: list[Path], workers: int) -> float:
    """A backlog queued while no worker runs, given at once to workers that are all
    ready: ingest queues it under a prefix no worker reads, and once every worker
    answers /readyz the series are put on the workers' queue. (Started on a waiting
    queue, the first worker up began alone while the second was still importing, on
    the same cores: a loaded machine's start-up counted as de-identification.)"""
    pipe = Pipeline(root, orthanc)
    parked = f"{pipe.prefix}-parked"
    try:
        pipe.start("ingest", "ingest", queue_prefix=parked)
        deliver_all(folders, pipe.data / "incoming")
        wait_until(lambda: pipe.count("NEW") == len(folders), 3600, "the backlog", 0.2)
        for n in range(workers):
            pipe.start(f"deid{n}", "deid")
        pipe.wait_ready()
        asyncio.run(_publish(f"{pipe.prefix}.deid", pipe.series_ids("NEW")))
        wait_until(lambda: pipe.count("DONEPROCESSING") == len(folders), 3600, "the drain", 0.2)
        # From the first series taken to the last one done, as the event history saw it.
        return len(files_of(folders)) / pipe.event_span("started", "deidentified")
    finally:
        pipe.close()
        delete_queues(parked)
        shutil.rmtree(root, ignore_errors=True)


async def _publish(queue: str, series_ids: list[int]) -> None:
    bus = AmqpBus(AMQP_URL, RetryPolicy())
    await bus.connect()
    try:
        for series_id in series_ids:
            await bus.publish(queue, SeriesMessage(series_id=series_id))
    finally:
        await bus.close()


def memory_run(root: Path, orthanc: Orthanc, instances: int, seed: int) -> float:
    folders = make_corpus(root / "long", 1, instances, seed + 1)
    pipe = Pipeline(root / "memory", orthanc)
    try:
        pipe.start("ingest", "ingest")
        pipe.start("deid0", "deid")
        deliver_all(folders, pipe.data / "incoming")
        wait_until(lambda: pipe.count("DONEPROCESSING") == 1, 3600, "the long series", 0.5)
        return pipe.peaks()["deid0"]
    finally:
        pipe.close()


_QUORUM = Topology.declarations


def _classic(topology: Topology) -> list[tuple[str, dict]]:
    """The same queues as classic ones: what the relay declared before quorum queues."""
    keep = ("x-message-ttl", "x-dead-letter-exchange", "x-dead-letter-routing-key")
    return [(name, {k: v for k, v in args.items() if k in keep})
            for name, args in _QUORUM(topology)]


async def _bus_rate(url: str, messages: int, prefix: str) -> float:
    """Messages per second through the bus: published with confirms, then consumed
    and acked one at a time (prefetch 1, as the workers run)."""
    bus = AmqpBus(url, RetryPolicy())
    await bus.connect()
    queue = f"{prefix}.deid"
    done = asyncio.Event()
    seen = 0

    async def handler(message: SeriesMessage, attempt: int) -> None:
        nonlocal seen
        seen += 1
        if seen == messages:
            done.set()

    async def give_up(message: SeriesMessage, error: str) -> None:
        raise AssertionError("nothing fails here")

    try:
        await bus.declare(queue)
        started = time.perf_counter()
        for n in range(messages):
            await bus.publish(queue, SeriesMessage(series_id=n + 1))
        await bus.consume(queue, handler, give_up)
        await asyncio.wait_for(done.wait(), 600)
        return messages / (time.perf_counter() - started)
    finally:
        await bus.close()


def bus_rates(url: str, messages: int) -> dict[str, float]:
    """Interleaved rounds, the median of each kind: the shared broker's load varies."""
    rates: dict[str, list[float]] = {"quorum": [], "classic": []}
    for _ in range(3):
        for kind in rates:
            amqp.Topology.declarations = _classic if kind == "classic" else _QUORUM  # type: ignore[method-assign,assignment]
            prefix = f"bench-{uuid.uuid4().hex[:8]}"
            try:
                rates[kind].append(asyncio.run(_bus_rate(url, messages, prefix)))
            finally:
                amqp.Topology.declarations = _QUORUM  # type: ignore[method-assign]
                if url == AMQP_URL:
                    delete_queues(prefix)
    return {kind: sorted(values)[1] for kind, values in rates.items()}


def print_bus_rows(messages: int, cluster: bool = False) -> None:
    where = {"one node": AMQP_URL}
    nodes = None
    if cluster:
        from tests.support.clusters import RabbitCluster

        nodes = RabbitCluster().start()
        where["3-node cluster"] = nodes.url
    try:
        for label, url in where.items():
            rates = bus_rates(url, messages)
            print(f"\n| bus on {label}, {messages} messages (median of 3) | messages/s | "
                  "ms per message | ratio |\n| --- | --- | --- | --- |")
            for kind, rate in rates.items():
                print(f"| {kind} queues | {rate:.0f} | {1000 / rate:.2f} | "
                      f"{rate / rates['classic']:.2f}x classic |")
    finally:
        if nodes is not None:
            nodes.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--series", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--memory-series", type=int, default=0,
                        help="also measure deid's peak memory on one series this long")
    parser.add_argument("--bus-messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of each ratio, the median kept")
    parser.add_argument("--embedded-workers", type=int, default=None,
                        help="`relay up --workers N` (default: its own, one per core)")
    parser.add_argument("--only-bus", action="store_true",
                        help="only the bus rows (quorum against classic queues)")
    parser.add_argument("--bus-cluster", action="store_true",
                        help="the bus rows on a 3-node RabbitMQ cluster too (started here)")
    args = parser.parse_args()
    if args.only_bus:
        print_bus_rows(args.bus_messages, args.bus_cluster)
        return
    root = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    orthanc = Orthanc(root / "orthanc").start()
    try:
        report(root, orthanc, args)
    finally:
        orthanc.stop()
        shutil.rmtree(root, ignore_errors=True)


def bracketed(rounds: int, measure: Callable[[int], float], baseline: Callable[[], float]
              ) -> list[tuple[float, float]]:
    """Each round: the baseline, the measure, the baseline again; the measure against the
    mean of the baselines around it. A shared machine's load moves between minutes, so
    only a measure and its own baselines are compared, and the median round is kept."""
    pairs = []
    for n in range(rounds):
        before = baseline()
        rate = measure(n)
        pairs.append((rate, (before + baseline()) / 2))
    return pairs


def median_pair(pairs: list[tuple[float, float]]) -> tuple[float, float, float]:
    """The round of median ratio: (measure, baseline, ratio)."""
    ranked = sorted(pairs, key=lambda pair: pair[0] / pair[1])
    rate, base = ranked[len(ranked) // 2]
    return rate, base, rate / base


def report(root: Path, orthanc: Orthanc, args: argparse.Namespace) -> None:
    folders = make_corpus(root / "corpus", args.series, args.instances // args.series, args.seed)
    files = files_of(folders)
    rounds = args.rounds
    print(f"corpus: {len(files)} instances of 512x512 16-bit CT in {len(folders)} series; "
          f"ratios: the median of {rounds} rounds, each against baselines run just before "
          "and after it")
    outputs = iter(range(1_000_000))
    embedded = bracketed(
        rounds, lambda n: embedded_run(root / f"embedded{n}", folders, args.embedded_workers),
        lambda: pydicom_rate(files, root / f"pydicom-out-{next(outputs)}"))
    runs: dict[int, list[Run]] = {1: [], 2: []}

    def pipeline(workers: int) -> Callable[[int], float]:
        def measure(n: int) -> float:
            run = pipeline_run(root / f"run{workers}-{n}", orthanc, folders, workers, workers)
            runs[workers].append(run)
            return run.rate
        return measure

    upload4 = {w: bracketed(rounds, pipeline(w), lambda: orthanc_upload_rate(orthanc, files, 4))
               for w in (1, 2)}
    drains: list[tuple[float, float]] = []
    for n in range(rounds):  # one worker and two, in turn
        one = deid_drain(root / f"drain1-{n}", orthanc, folders, 1)
        drains.append((deid_drain(root / f"drain2-{n}", orthanc, folders, 2), one))
    print("\n| measure | instances/s | baseline, instances/s | ratio (median round) |")
    print("| --- | --- | --- | --- |")
    rate, base, ratio = median_pair(embedded)
    print(f"| `relay up` end to end (embedded defaults) | {rate:.0f} | pydicom read+write "
          f"{base:.0f} | {ratio:.2f}x |")
    for workers, pairs in upload4.items():
        rate, base, ratio = median_pair(pairs)
        print(f"| pipeline end to end, {workers} deid worker(s) and {workers} sender(s) to "
              f"Orthanc | {rate:.0f} | Orthanc REST upload, 4 connections {base:.0f} | "
              f"{ratio:.2f}x |")
    rate, base, ratio = median_pair(drains)
    print(f"| deid draining a queued backlog, 2 workers | {rate:.0f} | 1 worker {base:.0f} | "
          f"{ratio:.2f}x |")
    print("\nEvery round (measure / baseline):")
    for name, pairs in [("relay up / pydicom", embedded),
                        *[(f"pipeline {w}+{w} / Orthanc 4 conn.", upload4[w]) for w in (1, 2)],
                        ("deid drain 2 / 1", drains)]:
        print(f"- {name}: " + ", ".join(f"{m:.0f}/{b:.0f}" for m, b in pairs))
    for workers, measured in runs.items():
        stages = {stage: sorted(r.stage_rates[stage] for r in measured)[len(measured) // 2]
                  for stage in measured[0].stage_rates}
        print(f"- stage rates while busy, {workers}+{workers} (median): " +
              ", ".join(f"{stage} {rate:.0f}/s" for stage, rate in stages.items()))
    print("\n| process | peak memory, MB (1 deid) | (2 deid) |\n| --- | --- | --- |")
    for name in runs[2][0].peak_mb:
        print(f"| {name} | {runs[1][0].peak_mb.get(name, 0):.0f} | "
              f"{runs[2][0].peak_mb[name]:.0f} |")
    if args.memory_series:
        peak = memory_run(root, orthanc, args.memory_series, args.seed)
        print(f"\ndeid peak memory on one {args.memory_series}-instance series: {peak:.0f} MB")
    print_bus_rows(args.bus_messages, args.bus_cluster)


if __name__ == "__main__":
    main()
