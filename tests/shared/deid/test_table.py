"""Every attribute of PS3.15 Table E.1-1 planted, then checked against the
action the table gives it, under the Basic Profile and under each option.

The expected action is read from the JSON rows here, independently of the
engine's own resolution: a compound code allows any of its parts.
"""

from __future__ import annotations

import json
import re
from importlib import resources

import pytest
from pydicom.dataset import Dataset

from relay_shared.deid import OPTIONS, DeidConfig, deidentify
from relay_shared.deid.table import parse_tag
from relay_shared.deid.values import shift_da, shift_dt

from .planting import PSEUDO, planted_dataset, planted_tags, planted_value, reread

ROWS = {
    parse_tag(row["tag"]): row
    for row in json.loads(
        (resources.files("relay_shared.deid") / "data"
         / "confidentiality_profile_attributes.json").read_text()
    )
    if "X" not in row["tag"][1:].replace("0X", "") and "GGGG" not in row["tag"]
    and not re.search(r"[X]{2}", row["tag"])
}
# PS3.15 E.3.9 keeps every replaced UID under Retain UIDs; the extraction
# omits the code on these two rows (the engine corrects them the same way).
for _tag in (0x0040A124, 0x04000100):
    ROWS[_tag] = {**ROWS[_tag], "rtnUIDsOpt": "K"}
IDENTITY = {0x00100010, 0x00100020}  # replaced by the pseudonym whatever the code
UID_RE = re.compile(r"^2\.25\.\d{1,39}$")
CONFIGS = [frozenset()] + [frozenset({o}) for o in OPTIONS]


def allowed(tag: int, options: frozenset[str]) -> set[str]:
    row = ROWS[tag]
    chosen = {row[o] for o in options if o in row}
    if chosen:
        return {"C"} if "C" in chosen else {"K"}
    return set(row["basicProfile"].replace("*", "").split("/"))


def outcome(out: Dataset, tag: int, vr: str, options: frozenset[str], shift: int) -> set[str]:
    """Which codes the observed result is consistent with."""
    if tag not in out:
        return {"X"}
    value = out[tag].value
    original = planted_value(tag, vr)
    if vr == "SQ":
        return {"Z"} if len(value) == 0 else {"K", "C", "D", "U"}
    if value in (None, "", b"") or value == []:
        return {"Z"}
    if value == original or str(value) == str(original):
        return {"K", "C"}
    codes = {"D", "Z"}  # Z allows a dummy
    if vr == "UI" and UID_RE.match(str(value)):
        codes.add("U")
    if vr == "DA" and value == shift_da(str(original), shift):
        codes = {"C"}
    if vr == "DT" and value == shift_dt(str(original), shift):
        codes = {"C"}
    return codes


@pytest.mark.parametrize("raw", [False, True], ids=["in-memory", "parsed"])
@pytest.mark.parametrize("options", CONFIGS, ids=lambda o: next(iter(o), "basic"))
def test_every_attribute_gets_its_action(options: frozenset[str], raw: bool) -> None:
    ds = planted_dataset()
    if raw:
        ds = reread(ds)
    ids = PSEUDO.identifiers_for("PATIENT-1")
    out = deidentify(ds, ids, PSEUDO, DeidConfig(options=options)).dataset
    wrong = []
    for tag, vr in planted_tags().items():
        seen = outcome(out, tag, vr, options, ids.date_shift_days)
        expected = {"D"} if tag in IDENTITY else allowed(tag, options)
        if not seen & expected:
            wrong.append(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {vr}: "
                         f"expected {sorted(expected)}, got {sorted(seen)}")
    assert not wrong, "\n".join(wrong)


def test_every_row_is_planted() -> None:
    """Only rows pydicom's dictionary cannot type are left out, and those
    still get their table action by tag."""
    planted = set(planted_tags())
    missing = [t for t in ROWS if t not in planted and t >> 16 not in (0x0000, 0x0002)]
    assert len(planted) >= 600
    assert len(missing) <= 5, missing


def test_compound_codes_keep_what_common_iods_require() -> None:
    ds = reread(planted_dataset())
    out = deidentify(ds, PSEUDO.identifiers_for("P"), PSEUDO, DeidConfig()).dataset
    for keyword in ("PatientName", "PatientID", "StudyDate", "StudyTime", "AccessionNumber",
                    "ReferringPhysicianName", "StudyID", "ContentDate", "ContentTime",
                    "PatientBirthDate", "PatientSex", "StudyInstanceUID", "SeriesInstanceUID",
                    "DeviceSerialNumber"):
        assert keyword in out, keyword
    for keyword in ("SeriesDate", "InstitutionName", "OperatorsName", "ProtocolName"):
        assert keyword not in out, keyword


def test_the_wrong_vr_class_leaves_no_planted_value() -> None:
    """Every planted attribute under a VR its file gets wrong: nothing planted
    is left, as nothing is when the VRs are right, and the file meta names
    the replaced instance."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import dcmread

    from relay_shared.dicom.header import parse_file

    from .planting import planted_left, planted_wrong_vr_file

    ids = PSEUDO.identifiers_for("PATIENT-1")
    right = deidentify(parse_file(_saved(planted_dataset())), ids, PSEUDO, DeidConfig())
    assert planted_left(right.dataset.encode()) == []
    data = planted_wrong_vr_file()
    header = parse_file(data)
    wrong = sum(1 for tag, (vr, _) in header.body.items() if vr != planted_tags().get(tag, vr))
    out = deidentify(header, ids, PSEUDO, DeidConfig()).dataset.encode()
    assert planted_left(out) == []
    assert wrong == 0 and len(getattr(header, "misfits", [])) == 0  # all read, all checked
    ds = dcmread(DicomBytesIO(out))
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID != "1.2.999.524312"


def _saved(ds: Dataset) -> bytes:
    from io import BytesIO

    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
