"""The relay as a real process (`relay ingest`), attacked over loopback: what it writes
is readable by its own user only, and hostile input does not take its memory."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydicom import dcmread
from pynetdicom import AE, _config
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

from tests.support.dicom_factory import Patient, SeriesSpec, write_series
from tests.support.hostile import (
    A_ASSOCIATE_RQ_TYPE,
    P_DATA_TF_TYPE,
    associate_rq,
    deflate_bomb,
    pdu_header,
    stream_until_closed,
)
from tests.support.services import RelayProcess, free_port, relay_env, run_relay, wait_until

PATIENT = Patient("MRN-6006", "Johnson^Katherine")
GB = 1000**3
MB = 1000**2


@contextmanager
def _relay(tmp_path: Path, **settings: object) -> Iterator[tuple[RelayProcess, dict[str, str]]]:
    env = relay_env({}, data_dir=tmp_path / "var", scp_port=free_port(),
                    scp_ae_title="RELAYTEST", scp_allowed_aes="MODALITY", watch_interval=0.2,
                    metrics_port=0, **settings)
    run_relay("db", "upgrade", env=env)
    proc = RelayProcess("ingest", env, tmp_path / "ingest.log").start()
    try:
        wait_until(lambda: _listening(int(env["RELAY_SCP_PORT"])), 60, "the SCP")
        yield proc, env
    finally:
        proc.stop()


def _listening(port: int) -> bool:
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", port, ae_title="RELAYTEST")
    established = bool(assoc.is_established)
    if established:
        assoc.release()
    return established


def _send(port: int, paths: list[Path], chunked: bool = False,
          syntax: str = "1.2.840.10008.1.2.1") -> list[int]:
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CTImageStorage, syntax)
    assoc = ae.associate("127.0.0.1", port, ae_title="RELAYTEST")
    assert assoc.is_established
    statuses = [int(assoc.send_c_store(p if chunked else dcmread(p)).Status) for p in paths]
    assoc.release()
    return statuses


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("group_access", "file_mode", "dir_mode"),
                         [(False, 0o600, 0o700), (True, 0o660, 0o770)])
def test_what_the_relay_keeps_is_readable_by_its_own_user_or_group_only(
        tmp_path: Path, group_access: bool, file_mode: int, dir_mode: int) -> None:
    """Originals, staged and quarantined files and the database: the service's user's
    alone, or its group's too with RELAY_SHARED_GROUP_ACCESS; never anyone else's."""
    with _relay(tmp_path, stable_age=60, shared_group_access=group_access) as (_, env):
        _check_modes(env, tmp_path, file_mode, dir_mode)


def _check_modes(env: dict[str, str], tmp_path: Path, file_mode: int, dir_mode: int) -> None:
    data = Path(env["RELAY_DATA_DIR"])
    incoming = data / "incoming"
    folder = write_series(SeriesSpec(PATIENT, instances=2), tmp_path / "ST-1")[0].parent
    (folder / "broken.dcm").write_bytes(b"not DICOM at all")
    for path in folder.iterdir():
        path.chmod(0o644)  # as a folder delivery's writer would leave them
    folder.rename(incoming / "ST-1")
    sent = write_series(SeriesSpec(Patient("MRN-6007", "Vaughan^Dorothy"), instances=1),
                        tmp_path / "scp")
    assert _send(int(env["RELAY_SCP_PORT"]), sent) == [0]
    wait_until(lambda: any((data / "quarantine").rglob("*.dcm"))
               and any((data / "work").rglob("original/*.dcm")), 30, "the delivery ingested")
    staged = [p for p in (data / "staging").rglob("*.dcm")]
    kept = [*staged, *(data / "work").rglob("original/*.dcm"),
            *(data / "quarantine").rglob("*.dcm"), data / "relay.db"]
    assert staged and {str(p): _mode(p) for p in kept} == {str(p): file_mode for p in kept}
    folders = [data / "work", data / "quarantine", data / "staging",
               *(p.parent for p in kept if p.parent != data)]
    assert {str(p): _mode(p) for p in folders} == {str(p): dir_mode for p in folders}


def _vm(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"{field} not in /proc/{pid}/status")


@pytest.mark.slow
def test_hostile_input_does_not_take_the_relays_memory(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A gigabyte streamed by a calling AE that is not allowed, and a deflate bomb that
    inflates to 1.5 GB given to the folder watcher and to the SCP: the relay stays
    alive, refuses each, and its peak resident memory grows by less than 400 MB."""
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)  # sends the bomb as is
    bomb = deflate_bomb(tmp_path / "bomb.dcm", int(1.5 * GB))
    with _relay(tmp_path, stable_age=1) as (proc, env):
        assert proc.process is not None
        pid, port = proc.process.pid, int(env["RELAY_SCP_PORT"])
        time.sleep(2)
        idle = _vm(pid, "VmHWM")
        intruder = associate_rq("INTRUDER", "RELAYTEST")
        attacks = [(intruder, pdu_header(P_DATA_TF_TYPE, GB)),  # after its request
                   (b"", pdu_header(A_ASSOCIATE_RQ_TYPE, GB))]  # as its request
        pool = ThreadPoolExecutor(len(attacks))
        streams = [pool.submit(stream_until_closed, port, *attack, GB) for attack in attacks]
        incoming = Path(env["RELAY_DATA_DIR"]) / "incoming"
        (tmp_path / "ST-BOMB").mkdir()
        (tmp_path / "ST-BOMB" / "bomb.dcm").write_bytes(bomb.read_bytes())
        (tmp_path / "ST-BOMB").rename(incoming / "ST-BOMB")
        [status] = _send(port, [bomb], chunked=True, syntax="1.2.840.10008.1.2.1.99")
        streamed = [stream.result(300) for stream in streams]
        pool.shutdown()
        wait_until(lambda: not (incoming / "ST-BOMB").exists(), 120, "the bomb taken in")
        time.sleep(1)
        assert proc.alive()
        grown = _vm(pid, "VmHWM") - idle
        print(f"idle peak {idle / MB:.0f} MB, grown by {grown / MB:.0f} MB, "
              f"streamed before refusal {streamed}")
        assert grown < 400 * MB, f"peak memory grew by {grown / MB:.0f} MB"
        assert all(sent < 64 * MB for sent in streamed), f"{streamed} bytes taken before refusal"
        assert status == 0xA700
        quarantine = Path(env["RELAY_DATA_DIR"]) / "quarantine"
        wait_until(lambda: any(quarantine.rglob("bomb*.dcm")), 60, "the bomb quarantined")
