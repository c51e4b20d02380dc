"""Reasons and log lines carry tags and fixed phrases, never a value from the file
or a library's text about it."""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from relay_shared import logs
from relay_shared.bus import describe
from relay_shared.dicomfiles import BadDicomFile, read_header
from relay_shared.reasons import phi_log
from tests.support.dicom_factory import Patient, SeriesSpec, make_instance

PLANTED = "RR4711"


@pytest.fixture
def spec() -> SeriesSpec:
    return SeriesSpec(Patient(PLANTED, "Doe^Jane"), instances=1, rows=8, columns=8)


class Captured:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    def take(self) -> str:
        text = self.stream.getvalue()
        self.stream.seek(0)
        self.stream.truncate()
        return text


@pytest.fixture
def json_log() -> Iterator[Captured]:
    """The services' own log set-up, its stderr handler writing to a buffer."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure("test")
    captured = Captured()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(captured.stream)
    yield captured
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging.captureWarnings(False)


def wrong_vr_file(spec: SeriesSpec, path: Path) -> Path:
    """PatientID declared UL: six bytes are no whole number of 4-byte values, and
    pydicom's error quotes them."""
    make_instance(spec, 0).save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    at = data.index(b"\x10\x00\x20\x00LO") + 4
    path.write_bytes(data[:at] + b"UL" + data[at + 2:])
    return path


def test_a_value_of_the_wrong_vr_is_reported_by_its_tag_not_its_bytes(
        tmp_path: Path, spec: SeriesSpec) -> None:
    with pytest.raises(BadDicomFile) as caught:
        read_header(wrong_vr_file(spec, tmp_path / "a.dcm"))
    assert "(0010,0020)" in caught.value.reason
    assert PLANTED not in caught.value.reason and PLANTED not in describe(caught.value)


def test_not_dicom_reason_carries_no_library_hint(tmp_path: Path) -> None:
    path = tmp_path / "a.dcm"
    path.write_bytes(b"RR4711 is not DICOM" * 20)
    with pytest.raises(BadDicomFile) as caught:
        read_header(path)
    assert caught.value.reason == "not a DICOM Part 10 file"


def test_a_uid_pydicom_warns_about_reaches_the_log_as_its_tag_only(
        tmp_path: Path, spec: SeriesSpec, json_log: Captured) -> None:
    ds = make_instance(spec, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.SeriesInstanceUID = f"{PLANTED}.not-a-uid"
        ds.save_as(tmp_path / "a.dcm", enforce_file_format=True)
    read_header(tmp_path / "a.dcm")
    err = json_log.take()
    assert "(0020,000E)" in err
    assert PLANTED not in err


def test_pydicom_log_and_python_warnings_are_withheld(
        json_log: Captured) -> None:
    logging.getLogger("pydicom").warning("Unknown encoding '%s' - using default", PLANTED)
    warnings.warn(f"Invalid value for VR UI: '{PLANTED}'", UserWarning, stacklevel=1)
    err = json_log.take()
    assert err.count("library message withheld") == 2
    assert PLANTED not in err


def test_exception_text_reaches_only_the_phi_debug_log_and_only_when_on(
        json_log: Captured) -> None:
    error = ValueError(f"Instead received b'{PLANTED}'")
    assert PLANTED not in describe(error)
    logging.getLogger().setLevel(logging.DEBUG)  # a debug log level alone does not open it
    describe(error)
    assert PLANTED not in json_log.take()
    logs.enable_phi_debug(True)
    try:
        describe(error)
    finally:
        logs.enable_phi_debug(False)
    assert PLANTED in json_log.take()
    assert not phi_log.isEnabledFor(logging.DEBUG)


def test_an_os_error_is_told_by_its_errno_never_by_its_file_name() -> None:
    from relay_shared.reasons import reason_of

    full = OSError(28, "No space left on device", "/data/incoming/DOE^JOHN/1.dcm")
    reason = reason_of(full)
    assert reason.startswith("OSError ENOSPC: No space left on device")
    assert "DOE" not in reason and "/data" not in reason
