"""The folder destination: a hard link on the work store's file system, a copy across
file systems, and what it holds stays as sent when the working file goes."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay_sender.destinations import FolderDestination, OutgoingInstance, OutgoingSeries

SHM = Path("/dev/shm")


def one_instance(folder: Path) -> OutgoingSeries:
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "1.dcm"
    source.write_bytes(b"\0" * 128 + b"DICM" + b"de-identified bytes")
    return OutgoingSeries(7, "2.25.1", "2.25.2", [OutgoingInstance(1, "2.25.3", source)])


@pytest.fixture
def other_file_system() -> Iterator[Path]:
    if not SHM.is_dir() or SHM.stat().st_dev == Path(tempfile.gettempdir()).stat().st_dev:
        pytest.skip("needs /dev/shm on a file system of its own")
    with tempfile.TemporaryDirectory(dir=SHM) as path:
        yield Path(path)


def test_on_the_same_file_system_the_folder_gets_a_link_not_a_copy(tmp_path: Path) -> None:
    series = one_instance(tmp_path / "work")
    source = series.instances[0].path
    FolderDestination(tmp_path / "outbox").send(series)
    (sent,) = (tmp_path / "outbox").rglob("*.dcm")
    assert sent.stat().st_ino == source.stat().st_ino
    assert not list((tmp_path / "outbox").rglob("*.part"))
    source.unlink()  # the sender removes the working files once the series is DONE
    assert sent.read_bytes().endswith(b"de-identified bytes")


def test_across_file_systems_the_folder_gets_a_copy(tmp_path: Path,
                                                    other_file_system: Path) -> None:
    series = one_instance(tmp_path / "work")
    outbox = FolderDestination(other_file_system / "outbox")
    outbox.send(series)
    (sent,) = (other_file_system / "outbox").rglob("*.dcm")
    assert sent.read_bytes() == series.instances[0].path.read_bytes()
    assert outbox.missing(series) == set()


def test_a_part_file_left_by_a_crash_does_not_stop_the_link(tmp_path: Path) -> None:
    series = one_instance(tmp_path / "work")
    outbox = FolderDestination(tmp_path / "outbox")
    leftover = tmp_path / "outbox" / "2.25.1" / "2.25.2" / "2.25.3.dcm.part"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half")
    outbox.send(series)
    assert outbox.missing(series) == set()
    assert not leftover.exists()
    assert leftover.with_suffix("").stat().st_ino == series.instances[0].path.stat().st_ino
