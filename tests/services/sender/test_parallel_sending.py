"""RELAY_SEND_CONCURRENCY for the DICOM AE (C-STORE) and DICOMweb (STOW-RS) destinations:
several associations or requests in flight at once, seen by a TCP tap in front of a
real Orthanc, and every instance received by Orthanc exactly once, as its own
received-instance hook counts them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay_sender.destinations import OutgoingInstance
from relay_sender.dicom_ae import DicomDestination, split
from relay_sender.dicomweb import DicomWebDestination, batches
from tests.services.sender.test_dicom_ae import CALLING, PATIENT, outgoing
from tests.support.dicom_factory import SeriesSpec, write_series
from tests.support.services import Orthanc, free_port, wait_until
from tests.support.tap import ConnectionTap, tapped

INSTANCES = 40
RECEIVED = "received-instance "
COUNTING_HOOK = f"""
function ReceivedInstanceFilter(dicom, origin, info)
  print('{RECEIVED}' .. dicom.SOPInstanceUID)
  return true
end
"""


@pytest.fixture(scope="module")
def counting_orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    """An Orthanc that logs every instance it is given, a second copy of one included,
    and knows the relay's calling AE so that it answers its C-FIND."""
    root = tmp_path_factory.mktemp("orthanc-counting")
    hook = root / "count.lua"
    hook.write_text(COUNTING_HOOK)
    server = Orthanc(root / "orthanc", lua_scripts=[hook])
    server.modalities = {"relay": [CALLING, "127.0.0.1", free_port()]}
    server.start()
    yield server
    server.stop()


def received(orthanc: Orthanc, uids: set[str]) -> Counter[str]:
    """How many times Orthanc was given each of these instances."""
    log = (orthanc.root / "orthanc.log").read_text(errors="replace")
    return Counter(uid for line in log.splitlines() if RECEIVED in line
                   for uid in [line.rsplit(RECEIVED, 1)[1].strip()] if uid in uids)


def _sent_once(orthanc: Orthanc, uids: set[str]) -> None:
    counts = received(orthanc, uids)
    assert set(counts) == uids, f"{len(uids - set(counts))} instance(s) never arrived"
    assert set(counts.values()) == {1}, "some instance arrived more than once"


@pytest.mark.orthanc
@pytest.mark.parametrize("concurrency", [1, 4])
def test_c_store_goes_out_on_that_many_associations_each_instance_once(
        counting_orthanc: Orthanc, tmp_path: Path, concurrency: int) -> None:
    counting_orthanc.clear()
    series = outgoing(write_series(SeriesSpec(PATIENT, instances=INSTANCES), tmp_path / "s"))
    uids = {i.sop_instance_uid for i in series.instances}
    with tapped(counting_orthanc.dicom_port) as tap:
        dest = DicomDestination("127.0.0.1", tap.port, counting_orthanc.aet, CALLING,
                                timeout=30, concurrency=concurrency)
        dest.send(series)
        associations, at_once = tap.total, tap.most_at_once
        assert dest.missing(series) == set()
    assert associations == concurrency
    if concurrency == 1:
        assert at_once == 1
    else:
        assert at_once >= 2, "the associations went out one after another, not together"
    _sent_once(counting_orthanc, uids)


@pytest.mark.orthanc
@pytest.mark.parametrize("concurrency", [1, 4])
def test_stow_rs_keeps_that_many_requests_in_flight_each_instance_once(
        counting_orthanc: Orthanc, tmp_path: Path, concurrency: int) -> None:
    counting_orthanc.clear()
    series = outgoing(write_series(SeriesSpec(PATIENT, instances=INSTANCES), tmp_path / "s"))
    uids = {i.sop_instance_uid for i in series.instances}
    with tapped(counting_orthanc.http_port) as tap:
        dest = DicomWebDestination(f"http://127.0.0.1:{tap.port}/dicom-web", timeout=60,
                                   concurrency=concurrency)
        dest.send(series)
        at_once = tap.most_at_once
        assert dest.missing(series) == set()
        dest.close()
    # A connection is opened only when every open one is busy with a request.
    if concurrency == 1:
        assert at_once == 1
    else:
        assert at_once >= 2, "the requests went out one after another, not together"
    _sent_once(counting_orthanc, uids)


def _instances(count: int) -> list[OutgoingInstance]:
    return [OutgoingInstance(n, f"2.25.{n}", Path(f"{n}.dcm")) for n in range(count)]


def test_a_series_is_shared_out_evenly_and_small_ones_keep_one_association() -> None:
    assert [len(s) for s in split(_instances(40), 4, 8)] == [10, 10, 10, 10]
    assert [len(s) for s in split(_instances(19), 4, 8)] == [10, 9]
    assert [len(s) for s in split(_instances(5), 4, 8)] == [5]
    shares = split(_instances(43), 4, 8)
    assert [i.image_id for s in shares for i in s] == list(range(43))


def test_stow_batches_are_cut_so_each_connection_has_one(tmp_path: Path) -> None:
    paths = write_series(SeriesSpec(PATIENT, instances=30), tmp_path / "series")
    instances = outgoing(paths).instances
    assert [len(b) for b in batches(instances, 4)] == [8, 8, 8, 6]
    assert [len(b) for b in batches(instances, 1)] == [30]


def test_the_tap_counts_connections_open_at_once() -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server, \
            tapped(server.getsockname()[1]) as tap:
        first = socket.create_connection(("127.0.0.1", tap.port))
        second = socket.create_connection(("127.0.0.1", tap.port))
        accepted = [server.accept()[0], server.accept()[0]]
        wait_until(lambda: tap.total == 2, 10, "the tap to carry both connections")
        for sock in (first, second, *accepted):
            sock.close()
    assert isinstance(tap, ConnectionTap) and tap.total == 2 and tap.most_at_once == 2
