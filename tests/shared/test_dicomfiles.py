import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from blake3 import blake3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.datadict import dictionary_VR
from pydicom.encaps import encapsulate
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)

from relay_shared import dicomfiles
from relay_shared.dicom.header import ENCODINGS
from relay_shared.dicomfiles import (
    BadDicomFile,
    IncompleteDicomError,
    NotDicomError,
    TruncatedDicomError,
    read_header,
    read_received,
)
from tests.support.dicom_factory import Patient, SeriesSpec, make_instance
from tests.support.hostile import deflate_bomb


def _received(path: Path, limits: dicomfiles.SizeLimits = dicomfiles.DEFAULT_LIMITS
              ) -> dicomfiles.InstanceHeader:
    return read_received(path, limits)[0]


Reader = Callable[..., dicomfiles.InstanceHeader]
# Ingest reads with read_received: it must accept and refuse exactly as read_header.
READERS = pytest.mark.parametrize("read", [read_header, _received], ids=["pydicom", "received"])


@pytest.fixture
def spec() -> SeriesSpec:
    return SeriesSpec(Patient("MRN-1", "Doe^Jane"), instances=2, rows=64, columns=64)


def _write(spec: SeriesSpec, path: Path, encapsulated: bool = False) -> Path:
    ds = make_instance(spec, 0)
    if encapsulated:
        ds.file_meta.TransferSyntaxUID = RLELossless
        ds.PixelData = encapsulate([b"\x00" * 5000])
        ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


@READERS
def test_reads_the_uids_of_a_whole_file(read: Reader, tmp_path: Path,
                                        spec: SeriesSpec) -> None:
    header = read(_write(spec, tmp_path / "a.dcm"))
    assert header.sop_instance_uid == spec.sop_uids[0]
    assert header.series_instance_uid == spec.series_uid
    assert header.modality == "CT"


@READERS
@pytest.mark.parametrize("encapsulated", [False, True])
@pytest.mark.parametrize("cut", [1, 100, 3000])
def test_a_file_cut_in_its_pixel_data_is_truncated(read: Reader, tmp_path: Path,
                                                   spec: SeriesSpec, encapsulated: bool,
                                                   cut: int) -> None:
    path = _write(spec, tmp_path / "a.dcm", encapsulated)
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(TruncatedDicomError, match=r"ends early|unreadable"):
        read(path)


@READERS
def test_a_file_cut_in_its_header_is_truncated(read: Reader, tmp_path: Path,
                                               spec: SeriesSpec) -> None:
    path = _write(spec, tmp_path / "a.dcm")
    path.write_bytes(path.read_bytes()[:400])
    with pytest.raises(TruncatedDicomError):
        read(path)


@READERS
def test_text_is_not_dicom(read: Reader, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(NotDicomError, match="not a DICOM"):
        read(path)


@READERS
def test_missing_uids_are_named(read: Reader, tmp_path: Path, spec: SeriesSpec) -> None:
    ds = make_instance(spec, 0)
    del ds.SeriesInstanceUID
    ds.save_as(tmp_path / "a.dcm", enforce_file_format=True)
    with pytest.raises(IncompleteDicomError, match="SeriesInstanceUID"):
        read(tmp_path / "a.dcm")


# pydicom warns of every damaged value it reads; the test is about what it raises.
@READERS
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                                    DeflatedExplicitVRLittleEndian])
@given(cut=st.floats(0.0, 1.0), flips=st.lists(
    st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)), max_size=4))
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_damaged_file_is_read_or_named_bad_never_anything_else(
        read: Reader, tmp_path: Path, syntax: str, cut: float,
        flips: list[tuple[float, int]]) -> None:
    """Whatever a file's damage, ingest gets its header or a reason: an exception of
    any other kind would stop the whole delivery it came in."""
    ds = make_instance(SeriesSpec(Patient("MRN-1", "Doe^Jane"), instances=1, rows=8,
                                  columns=8), 0)
    ds.file_meta.TransferSyntaxUID = syntax
    ds.save_as(tmp_path / "whole.dcm", enforce_file_format=True)
    data = bytearray((tmp_path / "whole.dcm").read_bytes())
    data = data[:max(1, int(len(data) * cut))]
    for where, value in flips:
        data[int(where * len(data))] = value
    damaged = tmp_path / "damaged.dcm"
    damaged.write_bytes(bytes(data))
    try:
        header = read(damaged)
    except BadDicomFile as exc:
        assert str(exc), "a bad file is named with its reason"
    else:
        assert header.sop_instance_uid and header.series_instance_uid


@READERS
def test_a_cut_deflated_file_is_named_as_such(read: Reader, tmp_path: Path,
                                              spec: SeriesSpec) -> None:
    ds = make_instance(spec, 0)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(tmp_path / "whole.dcm", enforce_file_format=True)
    data = (tmp_path / "whole.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[:len(data) - 40])
    with pytest.raises(TruncatedDicomError, match="deflated"):
        read(tmp_path / "cut.dcm")


@READERS
def test_a_deflate_bomb_is_a_named_bad_file_before_it_is_inflated_whole(
        read: Reader, tmp_path: Path) -> None:
    """300 MiB of deflated zeros: counted in bounded chunks and refused past the default
    cap of 256 MiB, with a reason that names the setting, without holding the data set."""
    bomb = deflate_bomb(tmp_path / "bomb.dcm", 300 * 1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(BadDicomFile) as refused:
            read(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(refused.value) == "the deflated data set inflates beyond RELAY_MAX_INFLATED_BYTES"
    assert peak < 16 * 1024 * 1024


@READERS
def test_a_file_over_the_instance_cap_is_a_named_bad_file_unread(read: Reader, tmp_path: Path,
                                                                 spec: SeriesSpec) -> None:
    path = _write(spec, tmp_path / "a.dcm")
    limit = path.stat().st_size - 1
    with pytest.raises(BadDicomFile, match="larger than RELAY_MAX_INSTANCE_BYTES"):
        read(path, dicomfiles.SizeLimits(instance_bytes=limit))


def _outcome(read: Reader, path: Path) -> object:
    try:
        return read(path)
    except BadDicomFile as exc:
        return type(exc), str(exc)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless])
@given(cut=st.floats(0.0, 1.0), flips=st.lists(
    st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)), max_size=4),
    trailing=st.sampled_from([b"", b"\xfc\xff\xfc\xff\x00\x00\x00\x00", b"\x00" * 3]))
@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_ingest_reads_every_file_as_read_header_does(
        tmp_path: Path, syntax: str, cut: float, flips: list[tuple[float, int]],
        trailing: bytes) -> None:
    """The raw parser only spares pydicom's parse: whatever the damage, read_received
    gives the same header, or refuses with the same reason, as read_header; and the
    BLAKE3 is of the file's bytes."""
    ds = make_instance(SeriesSpec(Patient("MRN-1", "Doe^Jane"), instances=1, rows=8,
                                  columns=8), 0)
    ds.file_meta.TransferSyntaxUID = syntax
    if syntax == RLELossless:
        ds.PixelData = encapsulate([b"\xfe\xff\xdd\xe0" * 8, b"\x01" * 64])
        ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "whole.dcm", enforce_file_format=True)
    data = bytearray((tmp_path / "whole.dcm").read_bytes() + trailing)
    data = data[:max(1, int(len(data) * cut))]
    for where, value in flips:
        data[int(where * len(data))] = value
    damaged = tmp_path / "damaged.dcm"
    damaged.write_bytes(bytes(data))
    assert _outcome(_received, damaged) == _outcome(read_header, damaged)
    if not isinstance(_outcome(read_header, damaged), tuple):
        assert read_received(damaged)[1] == blake3(bytes(data)).hexdigest()


def test_a_plain_file_is_read_without_pydicom_s_parse(tmp_path: Path, spec: SeriesSpec,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(spec, tmp_path / "a.dcm")
    monkeypatch.setattr(dicomfiles, "read_checked", None)  # would fail if called
    header, digest = read_received(path)
    assert header.sop_instance_uid == spec.sop_uids[0]
    assert header.transfer_syntax_uid == ExplicitVRLittleEndian
    assert digest == blake3(path.read_bytes()).hexdigest()


def test_a_file_too_large_to_hold_is_hashed_in_pieces(tmp_path: Path, spec: SeriesSpec,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(spec, tmp_path / "a.dcm")
    monkeypatch.setattr(dicomfiles, "RAW_READ_BYTES", 16)
    monkeypatch.setattr(dicomfiles, "DIGEST_CHUNK", 100)
    header, digest = read_received(path)
    assert header.sop_instance_uid == spec.sop_uids[0]
    assert digest == blake3(path.read_bytes()).hexdigest()


_ODD_BYTES = st.binary(max_size=70) | st.lists(
    st.sampled_from([b"1", b".", b"0", b"A", b"_", b" ", b"\x00", b"a", b"-", b"\\", b"\xe9",
                     b"\x1b", b"^"]), max_size=70).map(b"".join)
# Mostly values near what the fast path takes (lengths and pads around its limits).
_NEAR = {"UI": rb"[0-9.]{0,66}[\x00 ]{0,2}", "CS": rb" ?[A-Z0-9_ ]{0,17}[\x00 ]?",
         "LO": rb" ?[\x1f-\x7f]{0,66}[\x00 ]?"}


def _values_of(vr: str) -> st.SearchStrategy[bytes]:
    return st.from_regex(_NEAR[vr], fullmatch=True) | _ODD_BYTES


_PLAIN_HEADER = {0x00080016: b"1.2.840.10008.5.1.4.1.1.2\x00", 0x00080018: b"1.2.3.4",
                 0x0020000E: b"1.2.3.5 ", 0x0020000D: b"1.2.3", 0x00080060: b"CT",
                 0x00100020: b"MRN-1 "}


@given(data=st.data(), tag=st.sampled_from(sorted(dicomfiles._WANTED)),
       charset=st.sampled_from([None, b"", b"ISO_IR 100", b"ISO_IR 192 ", b"ISO_IR 6",
                                b"ISO 2022 IR 87", b"GB18030"]),
       syntax=st.sampled_from([ExplicitVRLittleEndian.encode() + b"\x00",
                               ImplicitVRLittleEndian.encode(), b"1.2 x"]))
@settings(max_examples=600, deadline=None)
def test_values_taken_as_they_are_are_what_pydicom_makes_of_them(
        data: st.DataObject, tag: int, charset: bytes | None, syntax: bytes) -> None:
    """Where ingest takes a value's bytes as its text, pydicom's conversion gives the
    same text and no warning (which read_header would log). One value at a time is
    varied around what the fast path takes, the others plain."""
    wanted = {t: (dictionary_VR(t), value) for t, value in _PLAIN_HEADER.items()}
    wanted[tag] = (dictionary_VR(tag), data.draw(_values_of(dictionary_VR(tag))))
    if charset is not None:
        wanted[0x00080005] = ("CS", charset)
    plain = dicomfiles.plain_values(wanted, ("UI", syntax))
    if plain is None:
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert dicomfiles.converted(wanted, ENCODINGS[(False, True)], ("UI", syntax)) \
            == plain
    assert not caught
