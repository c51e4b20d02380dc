"""Datasets with a known value planted in every attribute of the table, and a
corpus of planted values by class (SR text, local codes, names in every
script) for the engine's and the whole relay's tests."""

from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass
from io import BytesIO

from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    BasicTextSRStorage,
    ComprehensiveSRStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

from relay_shared.deid import Pseudonymizer
from relay_shared.deid.table import entries
from tests.support.multilingual import PEOPLE, contexts

SECRET = b"test-secret-0123456789"
PSEUDO = Pseudonymizer(SECRET, key_id="test")


def planted_value(tag: int, vr: str) -> object:
    """A value of the VR that names its attribute, so a survivor is traceable."""
    text = f"V{tag:08X}"
    by_vr: dict[str, object] = {
        "PN": f"{text}^PLANTED", "DA": "20010203", "DT": "20010203040506",
        "TM": "040506", "UI": f"1.2.999.{tag}", "AS": "045Y", "DS": "12.5", "IS": "42",
        "US": 7, "SS": 7, "UL": 7, "SL": 7, "UV": 7, "SV": 7, "FL": 1.5, "FD": 1.5,
        "OB": b"\x01\x02", "OW": b"\x01\x02", "UN": b"\x01\x02", "OF": b"\x00\x00\xc0\x3f",
        "OD": b"\x00" * 8, "OL": b"\x01\x00\x00\x00", "OV": b"\x00" * 8,
        "AT": 0x00100010, "UR": f"http://example.org/{text}",
    }
    return by_vr.get(vr, text)


def vr_of(tag: int) -> str | None:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return None
    return vr.split(" or ")[0]


def planted_tags() -> dict[int, str]:
    out = {}
    for tag in entries():
        vr = vr_of(tag)
        # Groups 0000 (commands) and 0002 (file meta) never sit in a stored
        # dataset; the file meta has its own tests.
        if vr is not None and tag >> 16 not in (0x0000, 0x0002):
            out[tag] = vr
    return out


def planted_dataset() -> Dataset:
    ds = Dataset()
    for tag, vr in planted_tags().items():
        if vr == "SQ":
            item = Dataset()
            item.CodeValue = "PLANTED"
            ds.add_new(tag, vr, Sequence([item]))
        else:
            ds.add_new(tag, vr, planted_value(tag, vr))
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = planted_value(0x00080018, "UI")
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def reread(ds: Dataset) -> Dataset:
    """The dataset as the service sees it: parsed from bytes, elements raw."""
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return dcmread(buffer, stop_before_pixels=True)


# -- the "wrong VR" class: the same planted values under VRs the dictionary does not give


def planted_wrong_vr_file() -> bytes:
    """`planted_dataset` as a Part 10 file in which every text element of the
    top level is written under a wrong explicit VR, in turn through every VR
    there is but SQ (a text read as items is refused whole, which the
    property tests cover): UIDs as LO or US, dates as UT or OB, names as FD..."""
    from relay_shared.dicom.header import (
        ENCODINGS,
        PREAMBLE,
        encode_item,
        encode_meta,
        header_from_dataset,
    )
    from relay_shared.dicom.vocabulary import KNOWN_VRS, STRING_VRS

    header = header_from_dataset(reread(planted_dataset()))
    wrong = sorted(KNOWN_VRS - {"SQ"})
    for n, (tag, (vr, value)) in enumerate(sorted(header.body.items())):
        if vr in STRING_VRS:
            choices = [w for w in wrong if w != vr]
            header.body[tag] = (choices[n % len(choices)], value)
    assert header.meta is not None
    return PREAMBLE + encode_meta(header.meta) + encode_item(header.body,
                                                             ENCODINGS[(False, True)])


def planted_left(data: bytes) -> list[str]:
    """What of the planted values an output still holds: the marks of the
    text values, the planted UIDs, dates and times (none of them can occur in
    a pseudonym, a minted UID or a dummy by chance, times aside: those are
    compared as whole values)."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import dcmread as read

    text = data.decode("latin-1")
    left = sorted(set(re.findall(r"V[0-9A-F]{8}", text)))
    left += ["a planted UID"] * ("1.2.999." in text)
    left += ["the planted date"] * ("20010203" in text)
    try:
        ds = read(DicomBytesIO(data))
        left += [f"{e.tag} time" for e in ds.iterall() if e.VR == "TM" and e.value == "040506"]
    except Exception as exc:  # an output pydicom cannot read is a defect of its own
        left.append(f"an output pydicom cannot read ({type(exc).__name__})")
    return left


# -- a corpus of planted values by class: SR text, local codes, scripts --------

@dataclass(frozen=True)
class Planted:
    """One instance with identifying values planted where a profile that only
    looks at the table would keep them; none may be left in its output."""

    kind: str  # "SR text", "local codes", "scripts"
    label: str
    dataset: Dataset
    values: tuple[str, ...]


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, scheme, meaning
    return code


def _content(value_type: str, concept: tuple[str, str, str], relationship: str = "CONTAINS",
             **values: object) -> Dataset:
    item = Dataset()
    item.RelationshipType, item.ValueType = relationship, value_type
    item.ConceptNameCodeSequence = Sequence([_code(*concept)])
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


COMMENT = ("121106", "DCM", "Comment")


def _document(patient_id: str, name: str, sop_class: str = ComprehensiveSRStorage) -> Dataset:
    """An SR document of its own patient and study, in UTF-8."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = \
        name, patient_id, "19580721", "F"
    ds.StudyDate, ds.ContentDate, ds.StudyTime, ds.ContentTime = \
        "20230914", "20230914", "083000", "083000"
    ds.AccessionNumber, ds.StudyID, ds.ReferringPhysicianName = f"A{patient_id}", "1", ""
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "SR", 1, 1
    ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    ds.ConceptNameCodeSequence = Sequence([_code("18748-4", "LN", "Diagnostic imaging report")])
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


# Identifiers that are no original of the series, found by their form alone.
WRITTEN = ("+49 30 12345678", "030/1234567", "(020) 7946 0958", "r.vance@example.org",
           "123-45-6789", "900101-1234567", "11010519491231002X", "12 March 2019",
           "5. März 2024", "1er janvier 2024", "2019年3月12日", "2019년 3월 12일", "2019-03-12")


def sr_text_cases() -> list[Planted]:
    """A report that names a relative (also its Responsible Person), gives
    phone numbers, an e-mail address, national IDs and dates written out, in
    every SR item type, nested."""
    ds = _document("SRT-60231", "Vance^Rosalind")
    ds.ResponsiblePerson = "Quartermaine^Edwin"
    ds.OtherPatientIDs = "NHS9434765919"
    text = (f"Rosalind Vance, NHS9434765919, with her brother Edwin Quartermaine "
            f"({'; '.join(WRITTEN)}).")
    uid = generate_uid()
    ds.ContentSequence = Sequence([
        _content("PNAME", ("121008", "DCM", "Person Observer Name"), "HAS OBS CONTEXT",
                 PersonName="Quartermaine^Edwin"),
        _content("TEXT", COMMENT, TextValue=text),
        _content("DATE", ("111060", "DCM", "Study Date"), Date="19580721"),
        _content("DATETIME", ("111526", "DCM", "DateTime Started"), DateTime="20230914083000"),
        _content("UIDREF", ("121018", "DCM", "Procedure Study Instance UID"), UID=uid),
        _content("CODE", ("121071", "DCM", "Finding"), ConceptCodeSequence=Sequence(
            [_code("F-1", "99LOCAL", "Finding for Vance, see 12 March 2019")])),
        _content("CONTAINER", ("121070", "DCM", "Findings"), ContinuityOfContent="SEPARATE",
                 ContentSequence=Sequence([_content("TEXT", COMMENT, TextValue=text)])),
    ])
    values = ("Vance", "Rosalind", "Quartermaine", "Edwin", "SRT-60231", "NHS9434765919",
              "19580721", "20230914", uid, ds.StudyInstanceUID, *WRITTEN)
    return [Planted("SR text", "Comprehensive SR", ds, values)]


def local_code_cases() -> list[Planted]:
    """Local codes that embed the accession number, the MRN and order numbers
    the file holds nowhere else, at every depth where a code sits, in the
    schemes a site uses (99*, L)."""
    ds = _document("LOC-70412", "Okafor^Adaeze", sop_class=CTImageStorage)
    ds.Modality, ds.AccessionNumber = "CT", "ACC70412"
    ds.ProcedureCodeSequence = Sequence([_code("CT-ACC70412", "99RIS", "CT chest")])
    ds.RequestedProcedureCodeSequence = Sequence([_code("ORD88213", "L", "CT chest")])
    reference = Dataset()
    reference.ReferencedSOPClassUID, reference.ReferencedSOPInstanceUID = \
        CTImageStorage, generate_uid()
    reference.PurposeOfReferenceCodeSequence = Sequence(
        [_code("ROOM4-ACC70412", "99PACS", "Localizer")])
    ds.ReferencedImageSequence = Sequence([reference])
    ds.PerformedProtocolCodeSequence = Sequence(
        [_code("QX88213-LOC70412", "99PROTO", "Protocol of Okafor, MRN LOC-70412")])
    for keyword in ("ValueType", "ContinuityOfContent", "ConceptNameCodeSequence",
                    "CompletionFlag", "VerificationFlag"):
        delattr(ds, keyword)
    values = ("Okafor", "Adaeze", "LOC-70412", "ACC70412", "ORD88213", "QX88213", "LOC70412",
              reference.ReferencedSOPInstanceUID)
    return [Planted("local codes", "CT with local codes", ds, values)]


def script_cases() -> list[Planted]:
    """Each name of the multilingual set as its patient's name, written in
    every free-text place and every SR item that holds text."""
    cases = []
    for number, person in enumerate(PEOPLE):
        for written, planting in ((w, p) for w in person.written for p in contexts(person, w)):
            text = planting.text
            ds = _document(f"SCR-{number:03d}", person.original, BasicTextSRStorage)
            ds.StudyDescription = text[:64]
            ds.ImageComments = ds.AdditionalPatientHistory = ds.PatientComments = text
            ds.ProcedureCodeSequence = Sequence([_code("P-1", "99LOCAL", text[:64])])
            ds.ContentSequence = Sequence([
                _content("TEXT", ("121106", "DCM", f"Note {text}"[:64]), TextValue=text),
                _content("PNAME", ("121008", "DCM", "Person Observer Name"),
                         PersonName=person.original),
                _content("CODE", ("121071", "DCM", "Finding"), ConceptCodeSequence=Sequence(
                    [_code("F-1", "99LOCAL", text[:64])])),
                _content("CONTAINER", ("121070", "DCM", "Findings"),
                         ContinuityOfContent="SEPARATE",
                         ContentSequence=Sequence([_content("TEXT", COMMENT, TextValue=text)])),
            ])
            cases.append(Planted("scripts", f"{person.label}: {written} ({planting.label})", ds,
                                 (planting.value,)))
    return cases


def planted_corpus() -> list[Planted]:
    return [*sr_text_cases(), *local_code_cases(), *script_cases()]


def survivors(output_text: str, values: tuple[str, ...]) -> list[str]:
    """The planted values still in `output_text`: a plain substring search,
    both sides compared after NFKC, case folding and with invisible characters
    (Unicode category Cf) and combining marks left out, by this code alone
    (not the profile's nor the guard's: a blind spot of theirs must not be
    this test's). A name is found glued to anything ("OKONKWO_HEAD",
    "Doe1"); only a name of one or two letters in a script with spaces must
    stand as a word of its own, not touching a letter or a digit (as the
    relay looks for them: "Li" is in "Clinic" and "Application"). The
    relay's pseudonyms are left out first: random base32, they hold "WEI" or
    "LIN" now and then under a secret drawn for the run."""
    folded = _plain(_PSEUDONYMS.sub(" ", output_text))
    left = []
    for value in values:
        target = _plain(value)
        if len(target) <= 2 and target.isalpha() and not _UNSPACED.search(target):
            found = re.search(rf"(?<![^\W_]){re.escape(target)}(?![^\W_])", folded) is not None
        else:
            found = target in folded
        if found:
            left.append(value)
    return left


# Pseudonymizer: patient ID, patient name, local code values (16 characters).
_PSEUDONYMS = re.compile(r"PSN[A-Z2-7]{13}|PSEUDONYM\^[A-Z2-7]{10}|(?<![A-Za-z0-9])[A-Z2-7]{16}"
                         r"(?![A-Za-z0-9])")
_UNSPACED = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff66-\uff9f]")
_FORMAT = dict.fromkeys(c for c in range(sys.maxunicode + 1)
                        if unicodedata.category(chr(c)) == "Cf")


def _plain(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_FORMAT)
    return unicodedata.normalize("NFC", "".join(
        c for c in unicodedata.normalize("NFD", folded) if not unicodedata.combining(c)))


# What the relay writes of its own, the same in every output: the profile's
# name and the option codes' meanings ("Retain Longitudinal Temporal ...",
# where "Long" is no surname).
PROVENANCE = frozenset({0x00120063, 0x00120064})


def output_text(ds: Dataset) -> str:
    """Every value of an output, at every depth, file meta included, as text;
    but the relay's own provenance."""
    parts: list[str] = []
    _values_of(ds, parts)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        parts += [str(elem.value) for elem in meta.iterall()]
    return "\n".join(parts)


def _values_of(ds: Dataset, parts: list[str]) -> None:
    for elem in ds:
        if elem.tag in PROVENANCE:
            continue
        if elem.VR == "SQ":
            for item in elem.value:
                _values_of(item, parts)
        elif elem.value is not None:
            parts.append(str(elem.value))
