"""Pixel data copied byte for byte, never decoded, in every encoding."""

from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)

from relay_shared.deid import DeidConfig, Header, deidentify
from relay_shared.deid.streamcopy import load_header, write_deidentified

from .planting import PSEUDO
from .test_structure import base


def image(transfer_syntax: str) -> Dataset:
    ds = base()
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.Rows = ds.Columns = 64
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    pixels = (np.arange(64 * 64, dtype=np.uint16) * 7).reshape(64, 64)
    if transfer_syntax == RLELossless:
        ds.PixelData = encapsulate([b"\x01\x02" * 100 + b"DOE^JOHN", b"\x03\x04" * 51])
        ds["PixelData"].VR = "OB"
        ds.NumberOfFrames = 2
    else:
        ds.PixelData = pixels.tobytes() if transfer_syntax != ExplicitVRBigEndian \
            else pixels.astype(">u2").tobytes()
    return ds


def read_with_pydicom(path: Path) -> Dataset:
    return dcmread(path, stop_before_pixels=True)


# Both ways a caller may hold a header: parsed on its bytes (a Header), or
# read by pydicom (a Dataset, converted at the edge).
@pytest.fixture(params=[load_header, read_with_pydicom], ids=["load_header", "dcmread"])
def reader(request):
    return request.param


def deidentified_copy(tmp_path: Path, ds: Dataset, reader=load_header) -> tuple[Path, Path]:
    src = tmp_path / "src.dcm"
    ds.save_as(src, enforce_file_format=True)
    header = reader(src)
    result = deidentify(header, PSEUDO.identifiers_for("MRN-4711"), PSEUDO, DeidConfig())
    dst = tmp_path / "dst.dcm"
    write_deidentified(src, dst, result.dataset)
    return src, dst


SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian,
            DeflatedExplicitVRLittleEndian, RLELossless]


@pytest.mark.parametrize("syntax", SYNTAXES, ids=lambda s: s.name)
def test_pixel_data_is_byte_identical(tmp_path: Path, syntax: str, reader) -> None:
    src, dst = deidentified_copy(tmp_path, image(syntax), reader)
    before, after = dcmread(src), dcmread(dst)
    assert after.PixelData == before.PixelData
    assert after.file_meta.TransferSyntaxUID == syntax
    assert after.PatientName != "DOE^JOHN"
    assert not dst.with_name("dst.dcm.part").exists()


def test_pixel_bytes_are_the_same_bytes_in_the_file(tmp_path: Path, reader) -> None:
    """Even text that looks like a name inside compressed data stays: pixel
    data is data, never searched nor changed."""
    _, dst = deidentified_copy(tmp_path, image(RLELossless), reader)
    assert b"\x01\x02" * 100 + b"DOE^JOHN" in dst.read_bytes()


def test_elements_after_pixel_data_are_dropped_or_deidentified(tmp_path: Path, reader) -> None:
    ds = image(ExplicitVRLittleEndian)
    block = ds.private_block(0x7FE1, "VENDOR BULK", create=True)
    block.add_new(0x01, "LO", "DOE^JOHN")
    ds.add_new(0xFFFCFFFC, "OB", b"\x00" * 16)
    src = tmp_path / "src.dcm"
    ds.save_as(src, enforce_file_format=True)
    header = reader(src)
    result = deidentify(header, PSEUDO.identifiers_for("X"), PSEUDO, DeidConfig())
    write_deidentified(src, tmp_path / "dropped.dcm", result.dataset)
    assert not [t for t in dcmread(tmp_path / "dropped.dcm").keys() if t > 0x7FE00010]  # noqa: SIM118 (a Dataset iterates elements)
    seen = []

    def keep_padding(trailing: Dataset) -> Dataset:
        seen.extend(trailing.keys())
        del trailing[0x7FE10010]
        del trailing[0x7FE11001]
        return trailing

    write_deidentified(src, tmp_path / "kept.dcm", result.dataset, trailing=keep_padding)
    kept = dcmread(tmp_path / "kept.dcm")
    assert seen == [0x7FE10010, 0x7FE11001, 0xFFFCFFFC]
    assert [t for t in kept.keys() if t > 0x7FE00010] == [0xFFFCFFFC]  # noqa: SIM118 (a Dataset iterates elements)
    assert kept.PixelData == ds.PixelData


def test_a_failed_write_leaves_no_file(tmp_path: Path, reader) -> None:
    src = tmp_path / "src.dcm"
    image(ExplicitVRLittleEndian).save_as(src, enforce_file_format=True)
    header = reader(src)
    result = deidentify(header, PSEUDO.identifiers_for("X"), PSEUDO, DeidConfig())
    data = src.read_bytes()
    src.write_bytes(data[:-100])  # truncated pixel data
    with pytest.raises(ValueError):
        write_deidentified(src, tmp_path / "dst.dcm", result.dataset)
    assert list(tmp_path.iterdir()) == [src]


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                                    ExplicitVRBigEndian, RLELossless], ids=lambda s: s.name)
def test_read_header_parses_without_pydicom(tmp_path: Path, syntax: str) -> None:
    src = tmp_path / "src.dcm"
    image(syntax).save_as(src, enforce_file_format=True)
    header = load_header(src)
    assert isinstance(header, Header)
    assert header.get("PatientName") == "DOE^JOHN"
    assert header.pixel_offset is not None
    assert src.read_bytes()[header.pixel_offset:header.pixel_offset + 4] in (
        b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10")


def test_read_header_reads_deflated_files_and_code_extensions(tmp_path: Path) -> None:
    """Deflated files, and character sets with code extensions, are read on their bytes too."""
    for name, ds in (("deflated", image(DeflatedExplicitVRLittleEndian)),
                     ("iso2022", image(ExplicitVRLittleEndian))):
        if name == "iso2022":
            ds.SpecificCharacterSet = ["ISO 2022 IR 6", "ISO 2022 IR 87"]
        src = tmp_path / f"{name}.dcm"
        ds.save_as(src, enforce_file_format=True)
        header = load_header(src)
        assert isinstance(header, Header), name
        result = deidentify(header, PSEUDO.identifiers_for("X"), PSEUDO, DeidConfig())
        write_deidentified(src, tmp_path / f"{name}.out.dcm", result.dataset)
        assert dcmread(tmp_path / f"{name}.out.dcm").PixelData == ds.PixelData


def test_a_long_header_is_read_past_the_first_block(tmp_path: Path) -> None:
    ds = image(ExplicitVRLittleEndian)
    ds.add_new(0x0040A160, "UT", "DOE^JOHN " * 9000)  # Text Value: 81 KB of header
    src = tmp_path / "src.dcm"
    ds.save_as(src, enforce_file_format=True)
    header = load_header(src)
    assert isinstance(header, Header) and header.pixel_offset > 80000
    result = deidentify(header, PSEUDO.identifiers_for("X"), PSEUDO, DeidConfig())
    write_deidentified(src, tmp_path / "dst.dcm", result.dataset)
    out = dcmread(tmp_path / "dst.dcm")
    assert out.PixelData == ds.PixelData
    assert "DOE" not in out.get("TextValue", "")


@pytest.mark.timeout(60)
def test_a_deflated_file_padded_after_its_stream_is_copied_to_its_end(tmp_path: Path) -> None:
    """pydicom pads a deflated data set of odd length with a byte after the
    stream's end; the copy stops at the end of the stream, not forever."""
    ds = image(DeflatedExplicitVRLittleEndian)
    ds.PixelData = bytes(4 << 20)  # inflated in several chunks, the last up to the stream's end
    src = tmp_path / "src.dcm"
    ds.save_as(src, enforce_file_format=True)
    src.write_bytes(src.read_bytes() + b"\x00")  # padding after the stream, whatever its length
    result = deidentify(load_header(src), PSEUDO.identifiers_for("X"), PSEUDO, DeidConfig())
    write_deidentified(src, tmp_path / "out.dcm", result.dataset)
    assert dcmread(tmp_path / "out.dcm").PixelData == ds.PixelData
