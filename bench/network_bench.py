"""DICOM network throughput, in one run, against the same files:

  receive: dcmtk's storescu -> the relay's SCP, against storescu -> Orthanc's own
           C-STORE SCP (target: the relay at least 1.0x Orthanc);
  send:    the sender's C-STORE destination -> Orthanc, against storescu -> Orthanc
           (target: at least 0.9x storescu).

TCP_NODELAY is on at both ends: the relay sets it on every DICOM socket, and
dcmtk (storescu, and Orthanc which is built on it) reads the TCP_NODELAY
environment variable, set here for both. Orthanc is started on free loopback
ports with an empty database, and emptied before every round.

Usage: python bench/network_bench.py [N] [--size 256] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

os.environ["TCP_NODELAY"] = "1"  # read by dcmtk: storescu and Orthanc started below
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydicom import dcmread
from pynetdicom import evt

from relay_ingest import scp
from relay_sender.destinations import OutgoingInstance, OutgoingSeries
from relay_sender.dicom_ae import DicomDestination
from relay_sender.orthanc import OrthancDestination
from relay_shared.settings import load_settings
from tests.support.dicom_factory import Patient, SeriesSpec, write_series
from tests.support.services import Orthanc, free_port, wait_until


def make_files(folder: Path, count: int, size: int) -> list[Path]:
    spec = SeriesSpec(Patient("BENCH-1", "Bench^Mark"), instances=count, rows=size,
                      columns=size)
    return write_series(spec, folder)


class RelaySCP:
    """The SCP of ingest on its own asyncio loop in a thread, as the service runs it."""

    def __init__(self, data_dir: Path) -> None:
        self.settings = load_settings(data_dir=data_dir, scp_port=free_port(),
                                      scp_ae_title="RELAY", stable_age=3600)
        self.settings.ensure_dirs()
        self._stop: asyncio.Event | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete,
                                        args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        await scp.serve(self.settings, self._stop)

    def start(self) -> RelaySCP:
        self._thread.start()
        wait_until(lambda: echo(self.settings.scp_port, "RELAY"), 30, "the relay SCP")
        return self

    def stop(self) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


def echo(port: int, called: str) -> bool:
    result = subprocess.run(["echoscu", "-aec", called, "127.0.0.1", str(port)],
                            capture_output=True, timeout=30)
    return result.returncode == 0


def storescu(port: int, called: str, folder: Path) -> None:
    subprocess.run(["storescu", "-aec", called, "+sd", "127.0.0.1", str(port), str(folder)],
                   check=True, capture_output=True, timeout=600)


def outgoing(paths: list[Path]) -> OutgoingSeries:
    first = dcmread(paths[0], stop_before_pixels=True)
    return OutgoingSeries(1, str(first.StudyInstanceUID), str(first.SeriesInstanceUID), [
        OutgoingInstance(n, str(dcmread(p, stop_before_pixels=True).SOPInstanceUID), p)
        for n, p in enumerate(paths)])


SETTLE_SECONDS = 0.5
Case = tuple[Callable[[], None], Callable[[], None]]  # (run, empty the receiver)


def timed(cases: dict[str, Case], rounds: int) -> dict[str, list[float]]:
    """Seconds per case and round; each round runs every case once, so that a change
    in the machine's load during the run weighs on the cases of a round alike.
    Before each case the receiver is emptied and the disk flushed, and the machine
    gets a moment to settle."""
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    for round_number in range(rounds):
        # Rotated each round: what a case leaves behind (Orthanc still writing, dirty
        # pages being flushed) must not always fall on the same next case.
        shift = round_number % len(order)
        for name in order[shift:] + order[:shift]:
            run, reset = cases[name]
            reset()
            os.sync()
            time.sleep(SETTLE_SECONDS)
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def bare_scp() -> tuple[int, Callable[[], None]]:
    """pynetdicom's floor: an SCP with the same contexts whose handler stores nothing."""
    ae = scp.make_ae(load_settings(scp_ae_title="BARE"))
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[
        (evt.EVT_C_STORE, lambda _event: 0),
        (evt.EVT_CONN_OPEN, scp.tune_connection)])
    assert server is not None
    return port, server.shutdown


def report(title: str, count: int, ours: tuple[str, list[float]],
           theirs: tuple[str, list[float]], target: float) -> None:
    """Rates are medians over the rounds; the ratio is the median of each round's
    ratio, the two measured back to back."""
    ratio = statistics.median(t / o for o, t in zip(ours[1], theirs[1], strict=True))
    print(f"\n{title}")
    for label, seconds in (ours, theirs):
        median = statistics.median(seconds)
        print(f"  {label:<34} {count / median:8.1f} instances/s  ({median:.2f} s)")
    print(f"  ratio {ratio:.2f}x (target {target:.1f}x): {'met' if ratio >= target else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=300)
    parser.add_argument("--size", type=int, default=256, help="rows and columns (16-bit)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for tool in ("storescu", "echoscu", "/usr/sbin/Orthanc"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: run `make system-deps`")
    with tempfile.TemporaryDirectory(prefix="relay-net-bench-") as tmp:
        root = Path(tmp)
        files = make_files(root / "files", args.count, args.size)
        size_kib = files[0].stat().st_size / 1024
        print(f"{args.count} instances of {size_kib:.0f} KiB, median of {args.rounds} rounds")
        orthanc = Orthanc(root / "orthanc").start()
        relay = RelaySCP(root / "relay").start()
        bare_port, bare_stop = bare_scp()
        series = outgoing(files)
        sender = DicomDestination("127.0.0.1", orthanc.dicom_port, orthanc.aet, "RELAY")
        rest_sender = OrthancDestination(orthanc.url)
        folder = root / "files"
        try:
            result = timed({
                "orthanc": (lambda: storescu(orthanc.dicom_port, orthanc.aet, folder),
                            orthanc.clear),
                "relay": (lambda: storescu(relay.settings.scp_port, "RELAY", folder),
                          lambda: None),
                "bare": (lambda: storescu(bare_port, "BARE", folder), lambda: None),
                "sender": (lambda: sender.send(series), orthanc.clear),
                "rest": (lambda: rest_sender.send(series), orthanc.clear),
            }, args.rounds)
        finally:
            bare_stop()
            relay.stop()
            orthanc.stop()
    report("receive (storescu as the sender)", args.count, ("relay SCP", result["relay"]),
           ("Orthanc SCP", result["orthanc"]), 1.0)
    print(f"  {'(pynetdicom SCP storing nothing)':<34} "
          f"{args.count / statistics.median(result['bare']):8.1f} instances/s")
    report("send (Orthanc as the receiver)", args.count, ("relay sender (pynetdicom)",
           result["sender"]), ("storescu", result["orthanc"]), 0.9)
    report("send, the orthanc destination (REST, 4 connections)", args.count,
           ("relay sender (REST)", result["rest"]), ("storescu", result["orthanc"]), 0.9)


if __name__ == "__main__":
    main()
