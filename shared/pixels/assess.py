"""Whether an image's pixels may hold text, and which region rules apply to it.

Read from the ORIGINAL header, before the profile removes what tells the
device apart (manufacturer, model). Costs a few dictionary look-ups per image:
every image goes through it, most of them are not flagged.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from relay_shared.dicom.header import Header
from relay_shared.dicom.vocabulary import NUMBER_FORMATS

from .rules import RegionRule, Rules


@dataclass(frozen=True)
class Assessment:
    """`reason` is None when nothing suggests text in the pixels."""

    reason: str | None
    rules: tuple[RegionRule, ...] = ()
    modality: str = ""
    has_pixels: bool = True
    facts: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)

    @property
    def flagged(self) -> bool:
        return self.reason is not None


def assess(header: Header | Dataset, rules: Rules) -> Assessment:
    facts = read_facts(header, rules.keywords())
    reason = _flag_reason(facts, rules)
    if reason is None:
        return Assessment(None, facts=facts)
    matching = tuple(r for r in rules.regions
                     if all(c.holds(facts.get(c.keyword, ())) for c in r.conditions))
    modality = (facts.get("Modality") or ("",))[0].strip().upper()
    return Assessment(reason, matching, modality, _has_pixels(header), facts)


def _flag_reason(facts: dict[str, tuple[str, ...]], rules: Rules) -> str | None:
    def first(keyword: str) -> str:
        return (facts.get(keyword) or ("",))[0].strip().upper()

    if rules.burned_in_annotation and first("BurnedInAnnotation") == "YES":
        return "BurnedInAnnotation is YES"
    if first("Modality") in rules.modalities:
        return f"modality {first('Modality')}"
    if first("SOPClassUID") in rules.sop_classes:
        return f"SOP class {first('SOPClassUID')}"
    types = {v.strip().upper() for v in facts.get("ImageType", ())}
    hit = sorted(types & rules.image_types)
    if hit:
        return f"ImageType {hit[0]}"
    for device in rules.devices:
        if all(c.holds(facts.get(c.keyword, ())) for c in device):
            return "device listed as burning in text"
    return None


def read_facts(header: Header | Dataset, keywords: set[str]) -> dict[str, tuple[str, ...]]:
    """Values by keyword, as text (numbers in decimal); multi-valued split."""
    facts: dict[str, tuple[str, ...]] = {}
    for keyword in keywords:
        values = _values(header, keyword)
        if values:
            facts[keyword] = values
    return facts


def _values(header: Header | Dataset, keyword: str) -> tuple[str, ...]:
    if isinstance(header, Dataset):
        value = header.get(keyword)
        if value is None or value == "":
            return ()
        items = value if isinstance(value, list | tuple | MultiValue) else [value]
        return tuple(str(v) for v in items)
    tag = tag_for_keyword(keyword)
    elem = header.body.get(tag) if tag is not None else None
    if elem is None or type(elem[1]) is list:
        return ()
    vr, raw = elem
    if vr in NUMBER_FORMATS:
        code = NUMBER_FORMATS[vr]
        count = len(raw) // struct.calcsize(code)
        return tuple(str(v) for v in struct.unpack(f"{header.encoding.order}{count}{code}",
                                                   raw[:count * struct.calcsize(code)]))
    return tuple(header.codec.values(vr, raw))


def _has_pixels(header: Header | Dataset) -> bool:
    if isinstance(header, Dataset):
        return "Rows" in header and "EncapsulatedDocument" not in header
    return header.pixel_offset is not None
