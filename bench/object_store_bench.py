"""Bucket upload throughput, in one run, against the same files:

  s3:       the sender's S3 destination -> moto in server mode (send, then the check
            of every object the sender makes before clean-up);
  s3 bare:  plain boto3 put_object of the same files on 8 threads, nothing checked
            (the floor any boto3-based sender pays);
  gcs:      the sender's GCS destination -> gcp-storage-emulator, send and check.

Both stores run as their own processes on free loopback ports, in memory, so the
figures compare the relay's own work per object (checksums, requests, checks), not
the disks or networks of real stores. Rounds interleave the cases, each round under
a fresh prefix; rates are medians over the rounds.

Usage: python bench/object_store_bench.py [N] [--size 128] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydicom import dcmread

from relay_sender.destinations import OutgoingInstance, OutgoingSeries
from relay_sender.gcs import GcsDestination
from relay_sender.objectstore import UPLOAD_THREADS
from relay_sender.s3 import S3Destination
from tests.services.sender.test_gcs import BUCKET as GCS_BUCKET
from tests.services.sender.test_gcs import Emulator
from tests.support.dicom_factory import Patient, SeriesSpec, write_series
from tests.support.s3_server import REGION, MotoS3

S3_BUCKET = "relay-bench"


def make_series(folder: Path, count: int, size_kib: int) -> OutgoingSeries:
    side = int((size_kib * 1024 / 2) ** 0.5)
    spec = SeriesSpec(Patient("BENCH-1", "Bench^Patient"), instances=count, rows=side,
                      columns=side)
    paths = write_series(spec, folder)
    instances = [OutgoingInstance(i, str(dcmread(p, stop_before_pixels=True).SOPInstanceUID),
                                  p) for i, p in enumerate(paths)]
    return OutgoingSeries(1, spec.study_uid, spec.series_uid, instances)


def send_and_check(make: Callable[[str], S3Destination | GcsDestination],
                   series: OutgoingSeries) -> Callable[[str], None]:
    def run(prefix: str) -> None:
        destination = make(prefix)
        destination.send(series)
        if destination.missing(series):
            raise RuntimeError(f"{destination.name} does not hold what was sent")
    return run


def bare_puts(moto: MotoS3, series: OutgoingSeries) -> Callable[[str], None]:
    client = moto.client()

    def run(prefix: str) -> None:
        def one(instance: OutgoingInstance) -> None:
            client.put_object(Bucket=S3_BUCKET, Key=f"{prefix}/{instance.sop_instance_uid}.dcm",
                              Body=instance.path.read_bytes())
        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            list(pool.map(one, series.instances))
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("count", type=int, nargs="?", default=200)
    parser.add_argument("--size", type=int, default=128, help="KiB of pixels per instance")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        series = make_series(folder / "series", args.count, args.size)
        moto = MotoS3(folder / "moto.log", S3_BUCKET)
        emulator = Emulator(folder / "gcs.log")
        try:
            cases = {
                "s3 (relay, checked)": send_and_check(lambda prefix: S3Destination(
                    S3_BUCKET, prefix, endpoint=moto.url, region=REGION, access_key_id="k",
                    secret_access_key="s"), series),
                "s3 bare put_object": bare_puts(moto, series),
                "gcs (relay, checked)": send_and_check(lambda prefix: GcsDestination(
                    emulator.client(), GCS_BUCKET, prefix), series),
            }
            rates = timed(cases, args.rounds, args.count)
            size = series.instances[0].path.stat().st_size / 1024
        finally:
            moto.stop()
            emulator.stop()
    report(rates, args.count, size)


def timed(cases: dict[str, Callable[[str], None]], rounds: int,
          count: int) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for round_index in range(rounds):
        for name in names[round_index % len(names):] + names[:round_index % len(names)]:
            start = time.perf_counter()
            cases[name](f"bench-{uuid.uuid4().hex[:8]}")
            rates[name].append(count / (time.perf_counter() - start))
    return rates


def report(rates: dict[str, list[float]], count: int, size: float) -> None:
    base = statistics.median(rates["gcs (relay, checked)"])
    print(f"{count} instances x {size:.0f} KiB, {len(next(iter(rates.values())))} round(s)")
    print("| | inst/s | vs gcs |\n| --- | --- | --- |")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"| {name} | {rate:.1f} | {rate / base:.2f}x |")


if __name__ == "__main__":
    main()
