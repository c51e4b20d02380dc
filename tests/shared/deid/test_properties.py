"""Random datasets with identifiers planted anywhere never keep one."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from relay_shared.deid import DeidConfig, deidentify, find_leaks, identifying_values

from .planting import PSEUDO, reread
from .test_structure import base

# A hyphen never occurs in pseudonyms, UIDs or dummies, so a hit is a leak.
word = st.from_regex(r"[A-Z]{3,6}-[0-9]{2,4}", fullmatch=True)
name = st.tuples(word, word).map(lambda p: "^".join(p))

IDENTIFIERS = ["PatientID", "OtherPatientIDs", "AccessionNumber", "InstitutionName",
               "StationName", "StudyID", "DeviceSerialNumber", "PatientAddress"]
PEOPLE = ["PatientName", "ReferringPhysicianName", "OperatorsName", "PerformingPhysicianName"]
FREE_TEXT = ["ImageComments", "StudyDescription", "ManufacturerModelName", "SoftwareVersions",
             "AdditionalPatientHistory"]
SAFE_OPTIONS = ["rtnLongModifDatesOpt", "cleanDescOpt", "cleanStructContOpt", "cleanGraphOpt",
                "rtnSafePrivOpt", "rtnPatCharsOpt"]


@st.composite
def planted(draw) -> tuple[Dataset, list[str]]:
    ds = base()
    values = []
    for keyword in draw(st.lists(st.sampled_from(IDENTIFIERS), min_size=1, unique=True)):
        values.append(draw(word))
        setattr(ds, keyword, values[-1])
    for keyword in draw(st.lists(st.sampled_from(PEOPLE), min_size=1, unique=True)):
        values.append(draw(name))
        setattr(ds, keyword, values[-1])
    for keyword in draw(st.lists(st.sampled_from(FREE_TEXT), unique=True)):
        hidden = draw(st.sampled_from(values))
        shown = hidden.replace("^", " ") if draw(st.booleans()) else hidden
        setattr(ds, keyword, f"seen {shown} today")
    if draw(st.booleans()):
        _nest(ds, draw(st.sampled_from(values)), draw(name))
        values.append(str(ds.ReferencedImageSequence[0].ReferencedImageSequence[0].PersonName))
    if draw(st.booleans()):
        block = ds.private_block(0x0011, "HOSPITAL PRIVATE", create=True)
        block.add_new(0x01, "LO", draw(st.sampled_from(values)))
    return ds, values


def _nest(ds: Dataset, identifier: str, person: str) -> None:
    deepest = Dataset()
    deepest.PersonName = person
    deepest.TextValue = f"note on {identifier}"
    middle = Dataset()
    middle.ReferencedSOPInstanceUID = "1.2.999.42"
    middle.ReferencedImageSequence = Sequence([deepest])
    ds.ReferencedImageSequence = Sequence([middle])


def texts(ds: Dataset) -> str:
    out = []
    for elem in ds:
        if elem.VR == "SQ":
            out.extend(texts(item) for item in elem.value)
        elif isinstance(elem.value, bytes):
            out.append(elem.value.decode("latin-1"))
        else:
            out.append(str(elem.value))
    return "\n".join(out).upper()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(planted(), st.sets(st.sampled_from(SAFE_OPTIONS)))
def test_no_planted_identifier_survives(case, options) -> None:
    ds, values = case
    ds = reread(ds)
    config = DeidConfig(options=frozenset(options))
    originals = identifying_values(ds, config)
    result = deidentify(ds, PSEUDO.identifiers_for(str(ds.PatientID)), PSEUDO, config)
    dump = texts(result.dataset) + texts(result.dataset.file_meta)
    left = [v for v in values if v.upper() in dump or v.upper().replace("^", " ") in dump]
    assert not left
    assert find_leaks(result.dataset, originals) == []
