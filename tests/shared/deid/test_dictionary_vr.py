"""Actions follow the data dictionary's VR, not the VR a file writes.

Every UI, DA, DT, TM, PN, LO, SH, LT, ST and UT attribute of PS3.15 Table
E.1-1 (the project's own table data), at the top level and nested in
sequences, is written under a wrong explicit VR, and in implicit VR. The
output must hold its planted value no more than the output of the same file
written correctly does (what an option keeps on purpose, it keeps either way),
or the instance is refused with the relay's own reason.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.datadict import dictionary_VR
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from relay_shared.deid import DeidConfig, deidentify, find_leaks
from relay_shared.deid.table import entries
from relay_shared.dicom.header import (
    ENCODINGS,
    PREAMBLE,
    Item,
    encode_item,
    encode_meta,
    parse_file,
)
from relay_shared.dicom.vocabulary import KNOWN_VRS
from relay_shared.reasons import RelayError

from .planting import PSEUDO

TESTED_VRS = ("UI", "DA", "DT", "TM", "PN", "LO", "SH", "LT", "ST", "UT")
SOP_INSTANCE_UID, MEDIA_SOP_INSTANCE_UID = 0x00080018, 0x00020003
# Where a planted element sits: the top level, or inside sequences the profile
# walks (one the table lists, one it does not, and two deep).
PLACES = {
    "top": (),
    "kept sequence": (0x00540016,),  # Radiopharmaceutical Information: not in the table
    "referenced images": (0x00081140,),  # X/Z/U*: kept, its UIDs replaced at depth
    "two deep": (0x00081115, 0x00081140),  # Referenced Series > Referenced Image
}
CONFIGS = {"basic": DeidConfig(), "modified dates": DeidConfig(
    options=frozenset({"rtnLongModifDatesOpt"}))}
IDS = PSEUDO.identifiers_for("PID-BASE-1")


def table_attributes() -> dict[int, str]:
    """Tag -> dictionary VR, for the attributes of the table of the tested VRs
    (not the file meta group, which a data set does not hold)."""
    out = {}
    for tag in entries():
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            continue
        if vr in TESTED_VRS and tag >> 16 not in (0x0000, 0x0002):
            out[tag] = vr
    return out


ATTRIBUTES = table_attributes()
TAGS = sorted(ATTRIBUTES)


def planted_text(tag: int, vr: str, seed: int) -> str:
    """A value of the dictionary VR that names its attribute: no pseudonym,
    minted UID or dummy can contain it by chance."""
    mark = f"{tag:08X}"
    return {
        "UI": f"1.2.999.{int(mark, 16)}.{seed}",
        "DA": f"19{seed % 90 + 10:02d}0{seed % 9 + 1}1{seed % 9}",
        "DT": f"19{seed % 90 + 10:02d}0{seed % 9 + 1}1{seed % 9}134512.{seed % 999983:06d}",
        "TM": f"1345{seed % 50 + 10:02d}.{seed % 999983:06d}",
        "PN": f"QX{mark}^PLANTED{seed % 9973}",
        "SH": f"Q{mark}-{seed % 9973}"[:16],
    }.get(vr, f"Q{mark}-PLANTED-{seed}")


def needles(value: str, vr: str) -> list[bytes]:
    parts = [value]
    if vr == "PN":
        parts += value.split("^")
    if vr in ("DA", "DT"):
        parts.append(value[:8])
    return [p.encode() for p in parts if len(p) >= 6]


def padded(text: str, vr: str) -> bytes:
    data = text.encode()
    return data + (b"\x00" if vr == "UI" else b" ") if len(data) % 2 else data


def base_item() -> Item:
    return {
        0x00080016: ("UI", padded(CTImageStorage, "UI")),
        SOP_INSTANCE_UID: ("UI", padded("1.2.999.1.1", "UI")),
        0x00080060: ("CS", b"CT"),
        0x00100020: ("LO", b"PID-BASE-1"),
        0x0020000D: ("UI", padded("1.2.999.1.2", "UI")),
        0x0020000E: ("UI", padded("1.2.999.1.3", "UI")),
    }


def file_bytes(tag: int, written_vr: str | None, value: bytes, place: str) -> bytes:
    """A Part 10 file with the value under `written_vr`, or in implicit VR (None)."""
    body = base_item()
    elem = (written_vr or ATTRIBUTES[tag], value)
    holder = body
    for sequence in PLACES[place]:
        inner: Item = {}
        holder[sequence] = ("SQ", [inner])
        holder = inner
    holder[tag] = elem
    implicit = written_vr is None
    sop = body[SOP_INSTANCE_UID][1]
    meta = {0x00020002: ("UI", padded(CTImageStorage, "UI")),
            MEDIA_SOP_INSTANCE_UID: ("UI", sop),
            0x00020010: ("UI", padded(ImplicitVRLittleEndian if implicit
                                      else ExplicitVRLittleEndian, "UI"))}
    return PREAMBLE + encode_meta(meta) + encode_item(body, ENCODINGS[(implicit, True)])


def deidentified(data: bytes, config: DeidConfig) -> bytes | None:
    """The output's bytes, or None when the instance is refused with a reason."""
    try:
        header = parse_file(data)
        result = deidentify(header, IDS, PSEUDO, config)
    except RelayError as exc:
        assert exc.reason and not re.search(r"Q[0-9A-F]{8}|1\.2\.999\.", exc.reason)
        return None
    out = result.dataset.encode()
    assert find_leaks(parse_file(out), result.originals, config=config,
                      date_shift_days=IDS.date_shift_days) == []
    output = parse_file(out)
    if SOP_INSTANCE_UID in output.body:  # the file meta names the replaced instance
        assert output.meta is not None
        assert output.meta[MEDIA_SOP_INSTANCE_UID][1] == output.body[SOP_INSTANCE_UID][1]
    return out


def survivors(data: bytes | None, value: str, vr: str) -> set[bytes]:
    if data is None:
        return set()
    return {n for n in needles(value, vr) if n in data}


def check(tag: int, written_vr: str | None, place: str, config: DeidConfig, seed: int) -> None:
    vr = ATTRIBUTES[tag]
    value = planted_text(tag, vr, seed)
    raw = padded(value, vr)
    kept_on_purpose = survivors(deidentified(file_bytes(tag, vr, raw, place), config), value, vr)
    left = survivors(deidentified(file_bytes(tag, written_vr, raw, place), config), value, vr)
    assert left <= kept_on_purpose, (f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {vr} written as "
                                     f"{written_vr or 'implicit'} at {place}: {sorted(left)}")


def wrong_vrs(tag: int) -> list[str]:
    right = set(dictionary_VR(tag).split(" or "))
    return sorted(KNOWN_VRS - right)


@settings(max_examples=400, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_value_under_a_wrong_vr_is_treated_by_its_dictionary_vr(data: st.DataObject) -> None:
    tag = data.draw(st.sampled_from(TAGS), label="tag")
    written = data.draw(st.sampled_from([None, *wrong_vrs(tag)]), label="written VR")
    place = data.draw(st.sampled_from(sorted(PLACES)), label="place")
    config = data.draw(st.sampled_from(sorted(CONFIGS)), label="config")
    seed = data.draw(st.integers(min_value=1, max_value=10**9), label="seed")
    check(tag, written, place, CONFIGS[config], seed)


@pytest.mark.parametrize("place", sorted(PLACES))
def test_every_attribute_of_the_table_under_a_wrong_vr_and_in_implicit_vr(place: str) -> None:
    """Each attribute once in implicit VR and once under a wrong VR (in turn
    through every VR there is), at this depth, under the Basic Profile."""
    for n, tag in enumerate(TAGS):
        wrong = wrong_vrs(tag)
        check(tag, None, place, CONFIGS["basic"], n + 1)
        check(tag, wrong[n % len(wrong)], place, CONFIGS["basic"], n + 1)


@pytest.mark.parametrize(("keyword", "written"), [
    ("StudyInstanceUID", "LO"), ("SeriesInstanceUID", "SH"), ("SOPInstanceUID", "LO"),
    ("FrameOfReferenceUID", "SH"), ("StudyDate", "LO"), ("SeriesDate", "LO"),
    ("PatientName", "OB"), ("ReferringPhysicianName", "UT"), ("AccessionNumber", "US"),
])
def test_the_cases_seen_in_the_field(keyword: str, written: str) -> None:
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    assert tag is not None
    for place in PLACES:
        for config in CONFIGS.values():
            check(tag, written, place, config, 4711)


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
@pytest.mark.parametrize(("keyword", "options"), [
    ("StudyInstanceUID", {"rtnUIDsOpt"}),  # kept UIDs
    ("SOPInstanceUID", {"rtnUIDsOpt"}),
    ("StudyDate", {"rtnLongFullDatesOpt"}),  # kept dates and times
    ("AcquisitionDateTime", {"rtnLongFullDatesOpt"}),
    ("StudyTime", {"rtnLongFullDatesOpt"}),
    ("ExpiryDate", set()),  # a date the table does not list: kept by the Basic Profile
])
def test_a_kept_uid_date_or_time_that_is_not_one_is_not_kept(keyword: str, options: set[str],
                                                              implicit: bool) -> None:
    """Written under its right VR, but not of its VR's form: whatever it holds
    (here a name) does not go out because an option keeps the attribute."""
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    assert tag is not None
    config = DeidConfig(options=frozenset(options))
    right = ATTRIBUTES.get(tag) or dictionary_VR(tag)
    good = {"UI": "1.2.999.77.1", "DA": "20240315", "DT": "20240315101500", "TM": "101500"}
    kept = deidentified(file_bytes_any(tag, right, padded(good[right], right), implicit),
                        config)
    assert kept is not None and good[right].encode() in kept  # the option keeps a good one
    out = deidentified(file_bytes_any(tag, right, b"QPLANTED^NAME", implicit), config)
    assert out is not None and b"QPLANTED" not in out


def file_bytes_any(tag: int, vr: str, value: bytes, implicit: bool) -> bytes:
    ATTRIBUTES.setdefault(tag, vr)  # a tag outside the table's tested set
    return file_bytes(tag, None if implicit else vr, value, "top")


@pytest.mark.parametrize("written", ["LO", "UN", "SH", None], ids=str)
def test_a_safe_private_date_written_under_another_vr_is_shifted(written: str | None) -> None:
    """The private dictionary says (3109,xx0A) of "Applicare/RadWorks/Version 5.0"
    is a date: kept under Retain Safe Private, it is shifted like one."""
    from relay_shared.deid import SafePrivate

    creator = "Applicare/RadWorks/Version 5.0"
    body = base_item()
    body[0x31090010] = ("LO", padded(creator, "LO"))
    body[0x3109100A] = (written or "DA", b"20240315")
    implicit = written is None
    meta = {0x00020002: ("UI", padded(CTImageStorage, "UI")),
            MEDIA_SOP_INSTANCE_UID: ("UI", body[SOP_INSTANCE_UID][1]),
            0x00020010: ("UI", padded(ImplicitVRLittleEndian if implicit
                                      else ExplicitVRLittleEndian, "UI"))}
    data = PREAMBLE + encode_meta(meta) + encode_item(body, ENCODINGS[(implicit, True)])
    config = DeidConfig(options=frozenset({"rtnSafePrivOpt", "rtnLongModifDatesOpt"}),
                        safe_private=frozenset({SafePrivate(0x3109, creator, 0x0A)}))
    out = deidentify(parse_file(data), IDS, PSEUDO, config)
    kept = out.dataset.body[0x3109100A]
    assert kept[0] == "DA" and kept[1] != b"20240315"
    assert b"20240315" not in out.dataset.encode()
    assert out.audit["private_kept"] == 1


def test_the_file_meta_keeps_its_elements_under_their_dictionary_vrs() -> None:
    body = base_item()
    body[SOP_INSTANCE_UID] = ("LO", b"1.2.999.5.5")
    meta = {0x00020002: ("SH", padded(CTImageStorage, "UI")),
            MEDIA_SOP_INSTANCE_UID: ("LO", b"1.2.999.5.5"),
            0x00020010: ("LO", padded(ExplicitVRLittleEndian, "UI"))}
    data = PREAMBLE + encode_meta(meta) + encode_item(body, ENCODINGS[(False, True)])
    out = parse_file(deidentify(parse_file(data), IDS, PSEUDO, DeidConfig()).dataset.encode())
    assert out.meta is not None
    assert {tag: elem[0] for tag, elem in out.meta.items()} == {
        0x00020000: "UL", 0x00020001: "OB", 0x00020002: "UI", MEDIA_SOP_INSTANCE_UID: "UI",
        0x00020010: "UI", 0x00020012: "UI", 0x00020013: "SH"}
    assert out.meta[MEDIA_SOP_INSTANCE_UID][1] == out.body[SOP_INSTANCE_UID][1]
    assert b"1.2.999.5.5" not in out.body[SOP_INSTANCE_UID][1]


# -- kept values of a formed VR, binary attributes, safe private, names ------
#
# The leak guard does not read code strings, numbers, times or binary values,
# so what the engine keeps of them must be of their VR. Every public attribute
# of the data dictionary of these VRs is a candidate, listed in the table or not.

FORMED_VRS = ("CS", "DS", "IS", "AS", "TM")
BINARY_VRS = ("US", "SS", "UL", "SL", "FL", "FD", "OB", "OW")
TEXT_WRITTEN = ("LO", "SH", "LT", "ST", "UT", "UC")
PATIENT = "QUIMBY^ZEPHYRINE"  # planted as a code string, it has the CS form
KEPT_CONFIGS = {**CONFIGS, "full dates": DeidConfig(options=frozenset({"rtnLongFullDatesOpt"})),
                "patient characteristics": DeidConfig(options=frozenset({"rtnPatCharsOpt"}))}


def dictionary_attributes() -> tuple[dict[int, str], dict[int, str]]:
    """Tag -> dictionary VR of the public attributes of a formed VR, and of
    a binary (or ambiguous binary) one: not file meta, group lengths, pixel
    data or repeating groups."""
    from pydicom._dicom_dict import DicomDictionary

    formed, binary = {}, {}
    for tag, entry in DicomDictionary.items():
        vr = entry[0]
        if tag >> 16 in (0x0000, 0x0002, 0x7FE0) or tag & 0xFFFF == 0 or tag >> 16 == 0xFFFE:
            continue
        if vr in FORMED_VRS:
            formed[tag] = vr
        elif set(vr.split(" or ")) <= set(BINARY_VRS) | {"US or SS or OW"}:
            binary[tag] = vr
    return formed, binary


FORMED, BINARY = dictionary_attributes()
FORMED_TAGS, BINARY_TAGS = sorted(FORMED), sorted(BINARY)


def file_with(tag: int, written: str | None, value: bytes, place: str = "top",
              extra: Item | None = None) -> bytes:
    """Like `file_bytes`, for any tag, with the patient's name planted."""
    body = base_item()
    body[0x00100010] = ("PN", padded(PATIENT, "PN"))
    body.update(extra or {})
    holder = body
    for sequence in PLACES[place]:
        inner: Item = {}
        holder[sequence] = ("SQ", [inner])
        holder = inner
    holder[tag] = (written or "UN", value)
    implicit = written is None
    meta = {0x00020002: ("UI", padded(CTImageStorage, "UI")),
            MEDIA_SOP_INSTANCE_UID: ("UI", body[SOP_INSTANCE_UID][1]),
            0x00020010: ("UI", padded(ImplicitVRLittleEndian if implicit
                                      else ExplicitVRLittleEndian, "UI"))}
    return PREAMBLE + encode_meta(meta) + encode_item(body, ENCODINGS[(implicit, True)])


def planted_words(tag: int) -> str:
    """Text that no formed VR allows (lower case, a hyphen): a name or an ID."""
    return f"Quimby Q{tag:08X}-planted"


def assert_gone(data: bytes | None, *needles: bytes) -> None:
    if data is not None:
        left = [n for n in needles if n in data]
        assert not left, left


@settings(max_examples=300, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_kept_code_string_number_age_or_time_is_of_its_vr(data: st.DataObject) -> None:
    """CS, DS, IS, AS and TM attributes (kept, cleaned under an option, or
    anything else the profile does) written under their own VR, under a text
    VR, or in implicit VR, holding a name: the name does not go out. A code
    string holding the patient's name in the CS form does not either."""
    tag = data.draw(st.sampled_from(FORMED_TAGS), label="tag")
    vr = FORMED[tag]
    written = data.draw(st.sampled_from([vr, None, *TEXT_WRITTEN]), label="written VR")
    place = data.draw(st.sampled_from(sorted(PLACES)), label="place")
    config = data.draw(st.sampled_from(sorted(KEPT_CONFIGS)), label="config")
    as_code = vr == "CS" and data.draw(st.booleans(), label="the name as a code string")
    text = "ZEPHYRINE QUIMBY" if as_code else planted_words(tag)
    out = deidentified(file_with(tag, written, padded(text, vr), place), KEPT_CONFIGS[config])
    assert_gone(out, text.encode(), b"ZEPHYRINE QUIMBY", b"planted")


@settings(max_examples=300, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_text_in_a_binary_attribute_does_not_keep_its_bytes(data: st.DataObject) -> None:
    """US, SS, UL, SL, FL, FD, OB, OW and the ambiguous binary attributes
    ("US or SS", "OB or OW", ...) holding text written under a text VR: the
    bytes do not go out as numbers. The image is refused only when the
    value describes its pixels (Rows, Bits Allocated, ...)."""
    tag = data.draw(st.sampled_from(BINARY_TAGS), label="tag")
    written = data.draw(st.sampled_from(TEXT_WRITTEN), label="written VR")
    place = data.draw(st.sampled_from(sorted(PLACES)), label="place")
    config = data.draw(st.sampled_from(sorted(KEPT_CONFIGS)), label="config")
    text = planted_words(tag)
    out = deidentified(file_with(tag, written, padded(text, "LO"), place), KEPT_CONFIGS[config])
    assert_gone(out, b"planted", b"Quimby")
    if out is not None and tag in parse_file(out).body:
        kept = parse_file(out).body[tag]
        assert kept[0] in BINARY[tag].split(" or ")


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
@pytest.mark.parametrize("keyword", ["Rows", "SmallestImagePixelValue", "TagAngleSecondAxis",
                                     "RedPaletteColorLookupTableDescriptor", "BitsAllocated",
                                     "LargestPixelValueInSeries"])
def test_text_under_its_own_binary_vr_is_too_many_values(keyword: str, implicit: bool) -> None:
    """Written under the right VR (or none), text in a one- or three-valued
    binary attribute is not as many numbers as the dictionary allows."""
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    assert tag is not None
    vr = BINARY[tag].split(" or ")[0]
    out = deidentified(file_with(tag, None if implicit else vr, b"Quimby Q-planted"),
                       DeidConfig())
    assert_gone(out, b"planted", b"Quimby")
    good = (b"\x00\x02" * 3)[:{"US": 2, "SS": 2}.get(vr, 4) * (3 if "Descriptor" in keyword
                                                                     else 1)]
    out = deidentified(file_with(tag, None if implicit else vr, good), DeidConfig())
    assert out is not None and parse_file(out).body[tag][1] == good  # a number stays


@pytest.mark.parametrize(("keyword", "vr", "value", "options"), [
    # What an independent audit found kept (PS3.15 names none of these).
    ("ImageType", "CS", "ORIGINAL\\PRIMARY\\ZEPHYRINE QUIMBY", set()),
    ("SliceThickness", "DS", "Zephyrine Quimby 5551234", set()),
    ("InstanceNumber", "IS", "Zephyrine Quimby", set()),
    ("StudyTime", "TM", "Zephyrine Quimby MRN12345", {"rtnLongModifDatesOpt"}),  # C
    ("StudyTime", "TM", "Zephyrine Quimby MRN12345", {"rtnLongFullDatesOpt"}),  # K
    ("BodyPartExamined", "CS", "ZEPHYRINE QUIMBY", set()),
    ("WindowCenter", "DS", "MRN12345 Zephyrine", set()),
    ("SpacingBetweenSlices", "DS", "+49 30 1234567", set()),
    ("PatientAge", "AS", "Zephyrine", {"rtnPatCharsOpt"}),
    ("Modality", "CS", "zephyrine quimby", set()),
    ("Modality", "CS", "ZEPHYRINE", set()),  # one word of the name, and no modality
])
def test_the_cases_the_audit_found(keyword: str, vr: str, value: str, options: set[str]) -> None:
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    assert tag is not None
    config = DeidConfig(options=frozenset(options))
    for implicit in (False, True):
        out = deidentified(file_with(tag, None if implicit else vr, padded(value, vr)), config)
        assert out is not None
        assert_gone(out, b"Zephyrine", b"ZEPHYRINE", b"zephyrine", b"MRN12345", b"1234567")
        if tag in parse_file(out).body:  # a dummy, of the VR, where the value was
            kept = parse_file(out).body[tag]
            assert kept[0] == vr
    if keyword == "ImageType":  # the values that are of the VR stay
        out = deidentified(file_with(tag, vr, padded(value, vr)), config)
        assert out is not None
        assert parse_file(out).body[tag][1].startswith(b"ORIGINAL\\PRIMARY\\")


def test_a_code_string_that_is_of_its_vr_stays() -> None:
    """A value that is of its VR and no original is kept as it was, and a
    code string that is one word of the patient's name is a coincidence
    (Body Part Examined HEAD of a patient named Head), as for the guard."""
    from pydicom.datadict import tag_for_keyword

    for keyword, vr, value in [("BodyPartExamined", "CS", "CHEST"), ("SliceThickness", "DS",
                               "2.5"), ("InstanceNumber", "IS", "12"), ("StudyTime", "TM",
                               "101500"), ("ImageType", "CS", "ORIGINAL\\PRIMARY\\AXIAL"),
                               ("BodyPartExamined", "CS", "QUIMBY"),
                               # Longer than PS3.5 allows, or ACR-NEMA's form: still
                               # a number and a time, common in real files.
                               ("PixelSpacing", "DS", "0.48828125000000001\\0.5"),
                               ("StudyTime", "TM", "10:15:00")]:
        tag = tag_for_keyword(keyword)
        assert tag is not None
        out = deidentified(file_with(tag, vr, padded(value, vr)),
                           DeidConfig(options=frozenset({"rtnLongFullDatesOpt"})))
        assert out is not None and parse_file(out).body[tag][1].rstrip(b" ") == value.encode()


def test_a_pixel_description_that_is_not_of_its_vr_refuses_the_image() -> None:
    with pytest.raises(RelayError, match="describes the pixel data"):
        deidentify(parse_file(file_with(0x00280010, "LO", b"Quimby Q-planted")), IDS, PSEUDO,
                   DeidConfig())


@pytest.mark.parametrize("written", ["IS", "DS", "CS", "TM", "AS", "LO", "UN", None], ids=str)
def test_a_safe_private_value_not_of_its_private_vr_is_removed(written: str | None) -> None:
    """B_value of "SIEMENS MR HEADER" is on the safe list; the private
    dictionary says IS. Holding a name, under whatever VR, it is removed; a
    number stays."""
    from relay_shared.deid import SafePrivate

    creator = "SIEMENS MR HEADER"
    config = DeidConfig(options=frozenset({"rtnSafePrivOpt"}),
                        safe_private=frozenset({SafePrivate(0x0019, creator, 0x0C)}))
    for value, kept in [(b"Quimby MRN12345 +49 30 1234567 ", False), (b"1000", True)]:
        extra: Item = {0x00190010: ("LO", padded(creator, "LO"))}
        out = deidentified(file_with(0x0019100C, written, value, extra=extra), config)
        assert out is not None
        body = parse_file(out).body
        assert (0x0019100C in body) is kept
        assert_gone(out, b"Quimby", b"MRN12345", b"1234567")


def test_a_safe_private_text_is_scrubbed_of_the_originals() -> None:
    from relay_shared.deid import SafePrivate

    creator = "SIEMENS MR HEADER"
    config = DeidConfig(options=frozenset({"rtnSafePrivOpt"}),
                        safe_private=frozenset({SafePrivate(0x0019, creator, 0x99)}))
    extra: Item = {0x00190010: ("LO", padded(creator, "LO"))}
    out = deidentified(file_with(0x00191099, "LO", b"for Zephyrine Quimby", extra=extra), config)
    assert out is not None and 0x00191099 in parse_file(out).body
    assert_gone(out, b"Zephyrine", b"Quimby")


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
@pytest.mark.parametrize("tag", [0x00140104, 0x00142006, 0x0040A067])
def test_a_person_name_the_table_does_not_list_is_a_dummy(tag: int, implicit: bool) -> None:
    """The PN attributes Table E.1-1 does not list (Secondary Reviewer Name,
    Evaluator Name, and the retired Document Author): a name is not kept."""
    assert dictionary_VR(tag) == "PN"
    out = deidentified(file_with(tag, None if implicit else "PN", b"Gadget^Inspector"),
                       DeidConfig())
    assert out is not None
    assert_gone(out, b"Gadget", b"Inspector")
    assert parse_file(out).body[tag][1].rstrip(b" ") == b"ANONYMIZED"


@pytest.mark.parametrize("config", ["basic", "modified dates", "full dates"])
def test_every_formed_and_binary_attribute_of_the_dictionary(config: str) -> None:
    """Each attribute once, holding a name: a formed one under its own VR and
    in implicit VR, a binary one under a text VR (in turn through them)."""
    for tag in FORMED_TAGS:
        text = planted_words(tag)
        for written in (FORMED[tag], None):
            out = deidentified(file_with(tag, written, padded(text, FORMED[tag])),
                               KEPT_CONFIGS[config])
            assert_gone(out, b"planted", b"Quimby")
    for n, tag in enumerate(BINARY_TAGS):
        out = deidentified(file_with(tag, TEXT_WRITTEN[n % len(TEXT_WRITTEN)],
                                     padded(planted_words(tag), "LO")), KEPT_CONFIGS[config])
        assert_gone(out, b"planted", b"Quimby")


@pytest.mark.parametrize(("written", "out"), [
    (b"ISO_IR 192", b"ISO_IR 192"), (b"\\ISO 2022 IR 87", b"\\ISO 2022 IR 87"),
    (b"ISO-IR 100", b"ISO_IR 100"),  # pydicom's reading of a misspelling, spelt right
    (b"ZEPHYRINE QUIMBY", b"ISO_IR 6"),  # unknown: read as the default repertoire
])
def test_the_character_set_is_kept_as_standard_terms(written: bytes, out: bytes) -> None:
    """Specific Character Set is a CS the parser reads, not a code to dummy:
    it leaves as the standard terms of what it was read as."""
    data = deidentified(file_with(0x00080005, "CS", padded(written.decode(), "CS")),
                        DeidConfig())
    assert data is not None
    assert parse_file(data).body[0x00080005][1].rstrip(b" ") == out
