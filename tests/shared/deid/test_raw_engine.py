"""The raw engine (Header, bytes) and the Dataset engine agree: same
elements, same values, same audit, same originals, on every planted
attribute under every option, parsed from each transfer syntax."""

from __future__ import annotations

import copy

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from relay_shared.deid import OPTIONS, DeidConfig, parse_recipe
from relay_shared.deid.engine import deidentify_dataset, deidentify_header
from relay_shared.deid.header import Unsupported, header_from_dataset, parse_file

from .planting import PSEUDO, planted_dataset, reread
from .test_structure import private_dataset, three_deep

CONFIGS = [frozenset()] + [frozenset({o}) for o in OPTIONS]
RECIPE = parse_recipe("""\
attributes:
  StudyDescription: keep
  "(0008,0080)": {replace: "RESEARCH SITE"}
  OtherPatientIDs: hash
  AcquisitionDate: shift
  PatientComments: blank
""")


def as_syntax(ds: Dataset, syntax: str) -> Dataset:
    ds = copy.deepcopy(ds)
    ds.file_meta.TransferSyntaxUID = syntax
    return reread(ds)


def flatten(ds: Dataset, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for elem in ds:
        path = f"{prefix}{elem.tag:08X}"
        if elem.VR == "SQ":
            out[path] = len(elem.value)
            for i, item in enumerate(elem.value):
                out.update(flatten(item, f"{path}[{i}]."))
        else:
            out[path] = (elem.VR, str(elem.value))
    return out


def both(ds: Dataset, config: DeidConfig):
    ids = PSEUDO.identifiers_for("PATIENT-1")
    raw = deidentify_header(header_from_dataset(ds), ids, PSEUDO, config)
    old = deidentify_dataset(copy.deepcopy(ds), ids, PSEUDO, config)
    return raw, old


def assert_same(raw, old) -> None:
    out = raw.dataset.to_dataset()
    assert flatten(out) == flatten(old.dataset)
    meta = flatten(out.file_meta)
    meta.pop("00020000")  # the group length, written by the encoder
    assert meta == flatten(old.dataset.file_meta)
    assert raw.audit == old.audit
    for part in ("texts", "words", "dates", "uids"):
        assert getattr(raw.originals, part) == getattr(old.originals, part), part


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                                    ExplicitVRBigEndian], ids=lambda s: s.name)
@pytest.mark.parametrize("options", CONFIGS, ids=lambda o: next(iter(o), "basic"))
def test_engines_agree_on_every_planted_attribute(options: frozenset[str], syntax: str) -> None:
    assert_same(*both(as_syntax(planted_dataset(), syntax), DeidConfig(options=options)))


@pytest.mark.parametrize("make", [three_deep, private_dataset])
@pytest.mark.parametrize("options", [frozenset(), frozenset({"rtnSafePrivOpt",
                                                             "rtnLongModifDatesOpt"})])
def test_engines_agree_at_depth_and_on_private_blocks(make, options) -> None:
    for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        assert_same(*both(as_syntax(make(), syntax), DeidConfig(options=options)))


def test_engines_agree_under_a_recipe() -> None:
    ds = as_syntax(planted_dataset(), ExplicitVRLittleEndian)
    assert_same(*both(ds, DeidConfig(options=frozenset({"rtnLongModifDatesOpt"}),
                                     recipe=RECIPE)))


def test_a_parsed_file_encodes_back_to_the_same_bytes() -> None:
    ds = as_syntax(three_deep(), ExplicitVRLittleEndian)
    header = header_from_dataset(ds)
    again = parse_file(header.encode())
    assert again.encode() == header.encode()
    assert again.pixel_offset is None


def test_code_extensions_are_left_to_pydicom() -> None:
    ds = planted_dataset()
    ds.SpecificCharacterSet = ["ISO 2022 IR 6", "ISO 2022 IR 87"]
    with pytest.raises(Unsupported):
        header_from_dataset(reread(ds))


def test_a_header_the_raw_engine_gives_up_on_halfway_goes_through_pydicom(monkeypatch) -> None:
    """Whatever makes the raw engine stop, the header is done again by the
    Dataset engine from the original bytes, not from the half-done header."""
    from relay_shared.deid import deidentify
    from relay_shared.deid.header import Header
    from relay_shared.deid.rawengine import RawRun

    def give_up(run) -> None:
        raise Unsupported("only pydicom can")

    ds = as_syntax(three_deep(), ExplicitVRLittleEndian)
    header = parse_file(header_from_dataset(ds).encode())
    assert isinstance(header, Header)
    monkeypatch.setattr(RawRun, "scrub_deferred", give_up)
    result = deidentify(header, PSEUDO.identifiers_for("PATIENT-1"), PSEUDO, DeidConfig())
    monkeypatch.undo()
    assert isinstance(result.dataset, Dataset)
    _, old = both(ds, DeidConfig())
    assert flatten(result.dataset) == flatten(old.dataset)
    assert result.audit == old.audit


def test_engines_agree_on_values_from_the_identifiers_service() -> None:
    from dataclasses import replace

    ids = replace(PSEUDO.identifiers_for("PATIENT-1"), accession_number="ACC-PSEUDO",
                  extra={"InstitutionName": "RESEARCH SITE", "PatientComments": "none"})
    ds = as_syntax(three_deep(), ImplicitVRLittleEndian)
    ds.InstitutionName = "SAINT ELSEWHERE"
    ds.AccessionNumber = "ACC-1"
    ds = reread(ds)
    config = DeidConfig()
    raw = deidentify_header(header_from_dataset(ds), ids, PSEUDO, config)
    old = deidentify_dataset(copy.deepcopy(ds), ids, PSEUDO, config)
    assert_same(raw, old)
    out = raw.dataset.to_dataset()
    assert (out.InstitutionName, out.PatientComments, out.AccessionNumber) == (
        "RESEARCH SITE", "none", "ACC-PSEUDO")


NAMES = {
    "ISO_IR 100": "MÜLLER^JÖRG", "ISO_IR 101": "NOVÁK^ŘEHOŘ", "ISO_IR 109": "ĜOJO^ĤANS",
    "ISO_IR 110": "ŠIMKŪS^JĀNIS", "ISO_IR 126": "ΠΑΠΑΣ^ΝΙΚΟΣ", "ISO_IR 127": "محمد^علي",
    "ISO_IR 138": "כהן^דוד", "ISO_IR 144": "ИВАНОВ^ИВАН", "ISO_IR 148": "ŞAHİN^AYŞE",
    "ISO_IR 166": "สมชาย^ใจดี", "ISO_IR 192": "諸葛亮^孔明明", "GB18030": "欧阳锋^王小明",
    "GBK": "张三丰^李小龙",
}


@pytest.mark.parametrize("charset", sorted(NAMES))
def test_engines_and_guards_agree_in_every_simple_character_set(charset: str) -> None:
    from relay_shared.deid import find_leaks

    name = NAMES[charset]
    ds = three_deep()
    ds.SpecificCharacterSet = charset
    ds.PatientName = name
    ds.ImageComments = f"seen {name.replace('^', ' ')} today"
    ds.ContentSequence[0].ContentSequence[0].ContentSequence[0].PersonName = name
    ds = reread(ds)
    config = DeidConfig(options=frozenset({"cleanDescOpt"}))
    raw, old = both(ds, config)
    assert_same(raw, old)
    out = raw.dataset.to_dataset()
    assert name.split("^")[0] not in out.ImageComments
    leaky = reread(ds)  # the original itself: both guards find the same places
    assert find_leaks(header_from_dataset(leaky), raw.originals) == \
        find_leaks(leaky, raw.originals) != []
