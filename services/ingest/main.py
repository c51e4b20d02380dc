"""ingest: turn finished deliveries in the incoming folder into recorded, queued series."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import watchfiles

from relay_ingest import collector, commitment, follower, scp, staging
from relay_ingest.arrivals import Arrivals
from relay_ingest.handlers import claim, ingest_claimed, is_finished
from relay_ingest.origin import (
    OriginSeal,
    is_origin_file,
    note_folder_origin,
    read_origin,
    read_staged_delivery,
)
from relay_ingest.routing import IngestRouter
from relay_shared import outbox, series_lock, tlsconfig
from relay_shared.dicomfiles import SizeLimits
from relay_shared.metrics import INSTANCES_RECEIVED
from relay_shared.runtime import Runtime

log = logging.getLogger(__name__)


async def run(rt: Runtime, stop: asyncio.Event) -> None:
    incoming = rt.settings.incoming_dir
    assert incoming is not None
    if rt.settings.scp_port:
        tlsconfig.scp_context(rt.settings)  # a certificate that cannot be used stops start-up
    arrivals = Arrivals(rt.engine, rt.pseudonymizer.uid, rt.settings.stable_age)
    network = asyncio.create_task(scp.serve(rt.settings, stop, arrivals, _commitments(rt))) \
        if rt.settings.scp_port else None
    # Pull sources run beside the watch loop; what they fetch lands in incoming.
    pulls = [asyncio.create_task(follower.run(rt, stop))] if rt.settings.follow_orthanc_urls \
        else []
    if rt.settings.pacs_host:
        pulls.append(asyncio.create_task(collector.run(rt, stop)))
    router = IngestRouter(rt.projects, rt.settings)
    sealer = OriginSeal.of(rt.settings)
    refused_links: set[str] = set()
    wake = asyncio.Event()
    watched = [incoming, *(incoming / name for name in sorted(router.incoming_subdirs())
                           if (incoming / name).is_dir())]
    watcher = asyncio.create_task(_notice_arrivals(watched, wake, stop))
    while not stop.is_set():
        wake.clear()  # before the round: a delivery renamed in during it wakes the next
        # Claimed folders left by a crash, or by a round that failed (database down),
        # are taken up again before anything new.
        for claimed in _folders(rt.store.claimed_dir):
            await _ingest(rt, router, claimed)
        for folder, subdir in _deliveries(incoming, router.incoming_subdirs(), refused_links):
            if stop.is_set():
                break
            if is_finished(folder):
                note_folder_origin(folder, subdir, sealer)
                try:
                    claimed = claim(folder, rt.store)
                except FileNotFoundError:  # another ingest process claimed it first
                    continue
                await _ingest(rt, router, claimed)
        await _next_round(stop, wake, rt.settings.watch_interval)
    await watcher
    if network is not None:
        await network
    await asyncio.gather(*pulls)


# A burst of renames (a batch of deliveries) wakes the loop once: the notices are
# gathered until none came for STEP, and for DEBOUNCE at most.
ARRIVAL_STEP_MS = 20
ARRIVAL_DEBOUNCE_MS = 200


async def _notice_arrivals(folders: list[Path], wake: asyncio.Event, stop: asyncio.Event
                           ) -> None:
    """Wake the watch loop as soon as something is put in incoming (inotify), so a
    delivery waits for no poll. The watch interval stays the pace wherever no notice
    comes: a network file system written from another host, a watch limit reached.
    Only incoming itself (and its projects' subfolders) is watched, not the files
    being written inside a delivery."""
    try:
        async for _changes in watchfiles.awatch(
                *folders, watch_filter=None, stop_event=stop, recursive=False,
                step=ARRIVAL_STEP_MS, debounce=ARRIVAL_DEBOUNCE_MS):
            wake.set()
    except Exception as exc:  # a watch that cannot start leaves polling alone
        log.warning("incoming is not watched for changes; it is read every watch interval",
                    extra={"error_type": type(exc).__name__})


async def _next_round(stop: asyncio.Event, wake: asyncio.Event, interval: float) -> None:
    """Until a delivery is noticed, the service stops, or the interval is up."""
    waits = [asyncio.create_task(stop.wait()), asyncio.create_task(wake.wait())]
    try:
        await asyncio.wait(waits, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()


def _commitments(rt: Runtime) -> commitment.CommitmentKeeper:
    settings = rt.settings
    assert settings.staging_dir is not None and settings.incoming_dir is not None
    staging.key_names_with(settings.deid_secret.get_secret_value().encode())
    pipeline = commitment.Pipeline(settings.staging_dir, settings.incoming_dir,
                                   rt.store.claimed_dir)
    # Over TLS, a report goes back on the association that asked, never in plain DICOM.
    reporter = commitment.Reporter(settings.scp_ae_title, settings.scp_ae_addresses,
                                   new_associations=settings.scp_tls_cert is None,
                                   timeout=settings.dicom_timeout)
    return commitment.CommitmentKeeper(rt.engine, rt.pseudonymizer.uid, pipeline, reporter,
                                       settings.scp_commitment_timeout)


def _folders(root: Path, refused_links: set[str] | None = None) -> list[Path]:
    """The folders in ``root``. A link is refused and left where it is: following it
    would move out whatever it points at (logged once per name, by its name only)."""
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.iterdir()):
        if path.is_symlink():
            if refused_links is not None and path.name not in refused_links:
                refused_links.add(path.name)
                log.warning("symbolic link in the incoming folder refused, left in place",
                            extra={"link": path.name})
        elif path.is_dir():
            found.append(path)
    return found


def _deliveries(incoming: Path, subdirs: frozenset[str],
                refused_links: set[str] | None = None) -> list[tuple[Path, str | None]]:
    """Each delivery folder in incoming, with the subfolder it was put in: a folder
    named by a project's `incoming_subdir` holds deliveries rather than being one."""
    found: list[tuple[Path, str | None]] = []
    for folder in _folders(incoming, refused_links):
        if folder.name in subdirs:
            found.extend((inner, folder.name) for inner in _folders(folder, refused_links))
        else:
            found.append((folder, None))
    return found


async def _ingest(rt: Runtime, router: IngestRouter, claimed: Path) -> None:
    """Take in a claimed folder, unless another ingest process is on it: every process
    sharing the volume takes up claimed folders, left by one that stopped mid-way."""
    try:
        with series_lock.holding(rt.engine, f"claimed/{claimed.name}", wait=False) as ours:
            if ours and claimed.is_dir():
                await _ingest_held(rt, router, claimed)
    except Exception:  # the database is down: the folder stays claimed for the next round
        log.warning("claimed delivery not taken up this round", exc_info=True)
        await asyncio.sleep(rt.settings.retry_base_delay)


async def _ingest_held(rt: Runtime, router: IngestRouter, claimed: Path) -> None:
    count = sum(1 for p in claimed.rglob("*")
                if p.is_file() and not p.is_symlink() and not is_origin_file(p))
    sealer = OriginSeal.of(rt.settings)
    try:
        series_ids = await asyncio.to_thread(
            ingest_claimed, claimed, rt.engine, rt.store, rt.pseudonymizer.uid,
            rt.settings.deid_queue, router.route,
            SizeLimits(rt.settings.max_instance_bytes, rt.settings.max_inflated_bytes),
            read_origin(claimed, sealer), read_staged_delivery(claimed, sealer))
    except Exception:  # the claimed folder stays and is taken up again on the next round
        log.exception("delivery could not be ingested, will retry", extra={"files": count})
        await asyncio.sleep(rt.settings.retry_base_delay)
        return
    INSTANCES_RECEIVED.inc(count)
    log.info("delivery ingested", extra={"files": count, "series_ids": series_ids})
    try:
        await outbox.flush(rt.engine, rt.bus)
    except Exception:  # committed already: the sweep publishes it once the broker is back
        log.warning("publish deferred to the outbox sweep", exc_info=True)
