"""What the output says about its own de-identification, and the audit record.

The attributes follow PS3.3 C.7.1.1 (Patient Identity Removed, De-identification
Method and its code sequence, CID 7050) and C.7.6.1 (Longitudinal Temporal
Information Modified). The audit lists tags, never values.
"""

from __future__ import annotations

from functools import lru_cache

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from ..dicom.header import ENCODINGS, Item, parse_dataset
from .actions import Run
from .config import DeidConfig
from .pseudonyms import Identifiers
from .table import format_tag, table_sha256

ENGINE_VERSION = "1"
PROFILE = "DICOM PS3.15 E.1 Basic Application Level Confidentiality Profile"
BASIC_CODE = ("113100", "Basic Application Confidentiality Profile")
# CID 7050. Clean Pixel Data (113101) and Clean Recognizable Visual Features
# (113102) are never claimed: pixel data passes through untouched.
OPTION_CODES: dict[str, tuple[str, str]] = {
    "cleanGraphOpt": ("113103", "Clean Graphics Option"),
    "cleanStructContOpt": ("113104", "Clean Structured Content Option"),
    "cleanDescOpt": ("113105", "Clean Descriptors Option"),
    "rtnLongFullDatesOpt": ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    "rtnLongModifDatesOpt": ("113107",
                             "Retain Longitudinal Temporal Information Modified Dates Option"),
    "rtnPatCharsOpt": ("113108", "Retain Patient Characteristics Option"),
    "rtnDevIdOpt": ("113109", "Retain Device Identity Option"),
    "rtnUIDsOpt": ("113110", "Retain UIDs Option"),
    "rtnSafePrivOpt": ("113111", "Retain Safe Private Option"),
    "rtnInstIdOpt": ("113112", "Retain Institution Identity Option"),
}


def method_codes(config: DeidConfig) -> list[tuple[str, str]]:
    chosen = [OPTION_CODES[o] for o in sorted(config.options, key=lambda o: OPTION_CODES[o][0])]
    return [BASIC_CODE, *chosen]


def provenance(config: DeidConfig, implicit: bool, little: bool) -> Item:
    """The elements that record the de-identification, the same for every
    instance: built once per configuration and encoding; fresh items, shared
    (never changed) elements."""
    return {tag: ("SQ", [dict(i) for i in elem[1]]) if type(elem[1]) is list
            else elem for tag, elem in _parsed_provenance(config, implicit, little).items()}


@lru_cache(maxsize=32)
def _parsed_provenance(config: DeidConfig, implicit: bool, little: bool) -> Item:
    built = Dataset()
    _set_provenance(built, config)
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = implicit, little
    write_dataset(fp, built)
    return parse_dataset(fp.getvalue(), 0, ENCODINGS[(implicit, little)])[0]


def _set_provenance(ds: Dataset, config: DeidConfig) -> list[tuple[str, str]]:
    codes = method_codes(config)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = _method_text(config)
    items = []
    for value, meaning in codes:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        items.append(item)
    ds.DeidentificationMethodCodeSequence = items
    ds.LongitudinalTemporalInformationModified = _temporal(config)
    return codes


def _method_text(config: DeidConfig) -> list[str]:
    """LO is 64 characters at most, so one value per fact."""
    values = ["PS3.15 E.1 Basic Profile", f"DICOM Relay deid engine {ENGINE_VERSION}"]
    if config.recipe is not None:
        values.append(f"recipe {config.recipe.version}"[:64])
    return values


def _temporal(config: DeidConfig) -> str:
    if config.shifts_dates:
        return "MODIFIED"
    return "UNMODIFIED" if config.keeps_dates else "REMOVED"


def audit_record(run: Run, config: DeidConfig, ids: Identifiers,
                 codes: list[tuple[str, str]]) -> dict:
    recipe = config.recipe
    return {
        "engine_version": ENGINE_VERSION,
        "profile": PROFILE,
        "table_sha256": table_sha256(),
        "options": sorted(config.options),
        "method_codes": [c for c, _ in codes],
        "recipe": None if recipe is None else {"version": recipe.version, "sha256": recipe.sha256},
        "key_id": ids.key_id,
        "identifiers_sha256": ids.digest(),
        "date_shift_applied": bool(run.shifted),
        "removed": _tags(run.removed),
        "emptied": _tags(run.emptied),
        "replaced": _tags(run.replaced),
        "shifted": _tags(run.shifted),
        "cleaned": _tags(run.cleaned),
        "private_removed": run.private_removed,
        "private_kept": run.private_kept,
    }


def _tags(tags: set[int]) -> list[str]:
    return [format_tag(t) for t in sorted(tags)]


def merge_audits(records: list[dict]) -> dict:
    """One record per series from the records of its instances."""
    if not records:
        return {}
    merged = dict(records[0])
    for key in ("removed", "emptied", "replaced", "shifted", "cleaned"):
        merged[key] = sorted({t for r in records for t in r[key]})
    for key in ("private_removed", "private_kept"):
        merged[key] = sum(r[key] for r in records)
    merged["date_shift_applied"] = any(r["date_shift_applied"] for r in records)
    merged["instances"] = len(records)
    return merged
