"""Which work `relay up` hands to its worker processes, and how it starts them."""

from __future__ import annotations

from pathlib import Path

from relay_cli.workers import sender_may_share, worker_command
from relay_shared.settings import load_settings


def test_workers_send_too_unless_the_sender_must_be_one_process(tmp_path: Path) -> None:
    assert sender_may_share(load_settings(data_dir=tmp_path))
    projects = tmp_path / "projects.yaml"
    projects.write_text("version: 1\n")
    assert not sender_may_share(load_settings(data_dir=tmp_path, projects=projects))
    # One listener for the AE's storage commitment reports, on one port.
    assert not sender_may_share(load_settings(
        data_dir=tmp_path, destinations="dicom", dicom_host="127.0.0.1",
        dicom_verify="commitment"))
    assert sender_may_share(load_settings(data_dir=tmp_path, destinations="dicom",
                                          dicom_host="127.0.0.1"))


def test_a_worker_is_told_its_parent_its_bus_and_whether_it_sends(tmp_path: Path) -> None:
    command = worker_command(tmp_path / "bus.db", with_sender=True)
    assert command[command.index("--bus-file") + 1] == str(tmp_path / "bus.db")
    assert "--with-sender" in command and "--worker-of" in command
    assert "--with-sender" not in worker_command(None)
