"""The one engine on what real files hold: every transfer syntax (deflated
included), every character set (ISO 2022 code extensions included, and set
inside a sequence item), public elements stored as UN. pydicom is the
referee: each output is decoded by it and checked."""

from __future__ import annotations

import copy
import warnings
import zlib
from dataclasses import replace
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import DeflatedExplicitVRLittleEndian

from relay_shared.deid import DeidConfig, deidentify, find_leaks, identifying_values
from relay_shared.deid.actions import ProfileError
from relay_shared.deid.streamcopy import StreamCopyError, load_header, write_deidentified
from relay_shared.dicom.header import (
    DicomFormatError,
    Header,
    header_from_dataset,
    parse_file,
    parse_file_meta,
)

from .planting import PSEUDO, reread
from .test_structure import three_deep

IDS = PSEUDO.identifiers_for("PATIENT-1")


def saved(ds: Dataset) -> bytes:
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_a_parsed_file_encodes_back_to_the_same_bytes() -> None:
    header = header_from_dataset(reread(three_deep()))
    again = parse_file(header.encode())
    assert again.encode() == header.encode()
    assert again.pixel_offset is None


NAMES = {
    "ISO_IR 100": "MÜLLER^JÖRG", "ISO_IR 101": "NOVÁK^ŘEHOŘ", "ISO_IR 109": "ĜOJO^ĤANS",
    "ISO_IR 110": "ŠIMKŪS^JĀNIS", "ISO_IR 126": "ΠΑΠΑΣ^ΝΙΚΟΣ", "ISO_IR 127": "محمد^علي",
    "ISO_IR 138": "כהן^דוד", "ISO_IR 144": "ИВАНОВ^ИВАН", "ISO_IR 148": "ŞAHİN^AYŞE",
    "ISO_IR 166": "สมชาย^ใจดี", "ISO_IR 192": "諸葛亮^孔明明", "GB18030": "欧阳锋^王小明",
    "GBK": "张三丰^李小龙",
    "\\ISO 2022 IR 87": "Yamada^Tarou=山田^太郎=やまだ^たろう",
    "\\ISO 2022 IR 149": "Hong^Gildong=洪^吉洞=홍^길동",
    "ISO 2022 IR 13\\ISO 2022 IR 87": "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎",
}


@pytest.mark.parametrize("charset", sorted(NAMES))
def test_every_character_set_is_read_scrubbed_and_written_in_itself(charset: str) -> None:
    name = NAMES[charset]
    family = name.split("=")[0].split("^")[0]
    ds = three_deep()
    ds.SpecificCharacterSet = charset.split("\\") if "\\" in charset else charset
    ds.PatientName = name
    ds.ImageComments = f"seen {family} today"
    ds.ContentSequence[0].ContentSequence[0].ContentSequence[0].PersonName = name
    header = parse_file(saved(ds))
    originals = identifying_values(header)
    result = deidentify(header, IDS, PSEUDO, DeidConfig(options=frozenset({"cleanDescOpt"})))
    out = dcmread(BytesIO(result.dataset.encode()))
    assert str(out.PatientName) == IDS.patient_name
    assert family not in out.ImageComments and "***" in out.ImageComments
    assert find_leaks(result.dataset, originals) == []
    # the guard finds the original where it is, in the same set
    assert "(0010,0010)" in find_leaks(parse_file(saved(ds)), originals)


def test_a_character_set_set_inside_an_item_applies_to_that_item() -> None:
    ds = three_deep()
    ds.SpecificCharacterSet = "ISO_IR 100"
    inner = ds.ContentSequence[0].ContentSequence[0].ContentSequence[0]
    inner.SpecificCharacterSet = "ISO_IR 144"
    inner.PersonName = "ИВАНОВ^ИВАН"
    inner.TextValue = "ИВАНОВ came in"
    header = parse_file(saved(ds))
    result = deidentify(header, IDS, PSEUDO, DeidConfig(options=frozenset({"cleanStructContOpt"})))
    out = dcmread(BytesIO(result.dataset.encode()))
    inner_out = out.ContentSequence[0].ContentSequence[0].ContentSequence[0]
    assert "ИВАНОВ" not in str(inner_out.PersonName)
    assert find_leaks(result.dataset, identifying_values(parse_file(saved(ds)))) == []


def test_a_public_element_stored_as_un_gets_the_profile_of_its_attribute() -> None:
    ds = three_deep()
    ds.InstitutionName = "SAINT ELSEWHERE"
    ds.ReferringPhysicianName = "HOUSE^GREGORY"
    ds["InstitutionName"].VR = "UN"
    ds["InstitutionName"].value = b"SAINT ELSEWHERE "
    ds["ReferringPhysicianName"].VR = "UN"
    ds["ReferringPhysicianName"].value = b"HOUSE^GREGORY "
    header = parse_file(saved(ds))
    assert header.body[0x00080090][0] == "PN"
    result = deidentify(header, IDS, PSEUDO, DeidConfig())
    out = dcmread(BytesIO(result.dataset.encode()))
    assert "InstitutionName" not in out
    assert "HOUSE" not in str(out.get("ReferringPhysicianName", ""))


def deflated_file(tmp_path) -> tuple:
    ds = three_deep()
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 8, 8, 7
    ds.PhotometricInterpretation, ds.PixelRepresentation = "MONOCHROME2", 0
    ds.PixelData = bytes(range(16))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    src = tmp_path / "deflated.dcm"
    ds.save_as(src, enforce_file_format=True)
    return ds, src


def test_a_deflated_file_is_read_and_written_deflated_with_its_pixels(tmp_path) -> None:
    ds, src = deflated_file(tmp_path)
    header = load_header(src)
    assert header.deflated
    result = deidentify(header, IDS, PSEUDO, DeidConfig())
    write_deidentified(src, tmp_path / "out.dcm", result.dataset)
    out = dcmread(tmp_path / "out.dcm")
    assert out.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    assert out.PixelData == ds.PixelData
    assert str(out.PatientName) == IDS.patient_name


def test_a_deflated_dataset_that_inflates_past_the_cap_is_refused(tmp_path) -> None:
    _, src = deflated_file(tmp_path)
    with pytest.raises(DicomFormatError, match="inflates past"):
        load_header(src, max_inflated_bytes=64)
    prefix = src.read_bytes()[:parse_file_meta(src.read_bytes())[1]]
    bomb = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    data = bomb.compress(b"\x00" * (1 << 24)) + bomb.flush()  # 16 MB from 16 KB
    with pytest.raises(DicomFormatError, match="inflates past"):
        parse_file(prefix + data, max_inflated_bytes=1 << 20)


def test_a_header_cut_short_is_a_named_error() -> None:
    data = saved(reread(three_deep()))
    with pytest.raises(DicomFormatError, match="cut short"):
        parse_file(data[:-7])
    with pytest.raises(DicomFormatError, match="DICM"):
        parse_file(data[132:])


def test_a_dataset_is_converted_once_and_comes_back_a_dataset() -> None:
    ds = reread(three_deep())
    ds.PixelData = b"\x01\x02"
    result = deidentify(copy.deepcopy(ds), IDS, PSEUDO, DeidConfig())
    assert isinstance(result.dataset, Dataset)
    assert result.dataset.PixelData == b"\x01\x02"
    header_result = deidentify(header_from_dataset(ds), IDS, PSEUDO, DeidConfig())
    assert isinstance(header_result.dataset, Header)
    assert header_result.dataset.to_dataset() == result.dataset[:0x7FE00008]
    assert header_result.audit == result.audit


def test_values_from_the_identifiers_service_replace_or_are_added() -> None:
    ids = replace(IDS, accession_number="ACC-PSEUDO",
                  extra={"InstitutionName": "RESEARCH SITE", "PatientComments": "none"})
    ds = three_deep()
    ds.InstitutionName = "SAINT ELSEWHERE"
    ds.AccessionNumber = "ACC-1"
    result = deidentify(parse_file(saved(ds)), ids, PSEUDO, DeidConfig())
    out = result.dataset.to_dataset()
    assert (out.InstitutionName, out.PatientComments, out.AccessionNumber) == (
        "RESEARCH SITE", "none", "ACC-PSEUDO")


def test_an_icon_with_encapsulated_pixels_inside_an_item_is_read() -> None:
    from pydicom.encaps import encapsulate

    icon = Dataset()
    icon.Rows = icon.Columns = 1
    icon.PixelData = encapsulate([b"\xff\xd8\xff\xd9"])
    icon["PixelData"].VR = "OB"
    ds = three_deep()
    ds.IconImageSequence = Sequence([icon])
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.50"
    header = parse_file(saved(ds))
    assert dcmread(BytesIO(header.encode())).IconImageSequence[0].PixelData == icon.PixelData


def pydicom_files() -> list[str]:
    from pydicom.data import get_charset_files, get_testdata_files

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        files = get_testdata_files("*.dcm") + get_charset_files("*.dcm")
    return sorted(files)


@pytest.mark.parametrize("path", pydicom_files(), ids=lambda p: Path(p).name)
def test_every_pydicom_test_file_is_deidentified_or_refused_by_name(tmp_path, path) -> None:
    """pydicom's own test files, odd ones included: each is de-identified (and
    pydicom reads the output back, the identity replaced), or refused with a
    named error (DicomFormatError, StreamCopyError for pixel data cut
    short, ProfileError for a pixel description not of its VR: badVR.dcm's
    Number of Frames "1A"); never an exception of another kind."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            original = dcmread(path, stop_before_pixels=True)
        except Exception:
            pytest.skip("pydicom itself cannot read it")
        try:
            header = load_header(Path(path))
            result = deidentify(header, IDS, PSEUDO, DeidConfig())
            write_deidentified(Path(path), tmp_path / "out.dcm", result.dataset)
        except (DicomFormatError, StreamCopyError):
            return
        except ProfileError as exc:
            assert exc.reason == "a value that describes the pixel data is not of its VR"
            return
        out = dcmread(tmp_path / "out.dcm")
    if "PatientName" in original:
        assert str(out.PatientName) == IDS.patient_name
    source_uid = original.file_meta.get("MediaStorageSOPInstanceUID")
    if source_uid:
        assert out.file_meta.MediaStorageSOPInstanceUID != source_uid


def test_a_transfer_syntax_its_data_set_contradicts_is_refused_by_name() -> None:
    """pydicom's SC_rgb_jpeg.dcm: JPEG Baseline in the file meta, an implicit VR
    data set. Read as implicit and written on under the JPEG label, its pixel
    data would be lost; it is refused instead, in fixed words."""
    from pydicom.data import get_testdata_file

    from relay_shared.dicom.header import MISMATCHED_SYNTAX

    path = get_testdata_file("SC_rgb_jpeg.dcm")
    assert isinstance(path, str)
    with pytest.raises(DicomFormatError) as refused:
        load_header(Path(path))
    assert refused.value.reason == MISMATCHED_SYNTAX
    # A file that states no transfer syntax is still read as its bytes say.
    ds = dcmread(path)
    del ds.file_meta.TransferSyntaxUID
    header = parse_file(b"\x00" * 128 + b"DICM" + _meta_bytes(ds) + _body(ds))
    assert header.encoding.implicit


def _meta_bytes(ds: Dataset) -> bytes:
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info

    out = DicomBytesIO()
    write_file_meta_info(out, ds.file_meta, enforce_standard=False)
    return out.getvalue()


def _body(ds: Dataset) -> bytes:
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, True
    write_dataset(out, ds)
    return out.getvalue()
