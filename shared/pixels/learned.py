"""Region rules learned from the text gate.

When the gate holds an image from a device no region rule covers, where it read the
text says where that device burns it in. A proposal is made of the device (make,
model, image size) and of boxes around the words, padded and joined; an admin
accepts, edits or refuses it. Accepted rules are written in the format of a rules
file (`rules.py`), so deid loads them as it loads a site's file, and a site can hand
them to another.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import yaml

from .assess import Assessment
from .ocr import GateResult

PAD = 4  # pixels around each word: OCR boxes hug the glyphs, antialiasing does not
MAX_BOXES = 32
GLOB_SPECIAL = "*?["

BoxList = tuple[tuple[int, int, int, int], ...]


@dataclass(frozen=True)
class Proposal:
    manufacturer: str
    model: str
    rows: int
    columns: int
    boxes: BoxList


@dataclass(frozen=True)
class LearnedRule:
    rule_id: int
    manufacturer: str
    model: str
    rows: int
    columns: int
    boxes: BoxList
    covers_text: bool

    @property
    def name(self) -> str:
        return f"learned-{self.rule_id}"


def propose(assessment: Assessment, result: GateResult) -> Proposal | None:
    """A rule for the device of an image the gate held, when no rule covers it."""
    if not result.held or assessment.rules or not result.text_boxes:
        return None
    manufacturer = _fact(assessment, "Manufacturer")
    rows, columns = _fact(assessment, "Rows"), _fact(assessment, "Columns")
    if not manufacturer or not rows.isdigit() or not columns.isdigit():
        return None  # a rule needs a device to apply to
    boxes = join_boxes(result.text_boxes, int(rows), int(columns))
    return Proposal(manufacturer, _fact(assessment, "ManufacturerModelName"), int(rows),
                    int(columns), boxes) if boxes else None


def _fact(assessment: Assessment, keyword: str) -> str:
    return (assessment.facts.get(keyword) or ("",))[0].strip()[:64]


def join_boxes(boxes: Iterable[Iterable[int]], rows: int, columns: int,
               pad: int = PAD) -> BoxList:
    """Each box padded and kept within the frame, overlapping ones joined into one."""
    pending = [_clip(_padded(box, pad), rows, columns) for box in boxes]
    joined: list[tuple[int, int, int, int]] = []
    while pending:
        box = pending.pop()
        touching = [other for other in joined if _overlap(box, other)]
        if not touching:
            joined.append(box)
            continue
        for other in touching:
            joined.remove(other)
            box = _union(box, other)
        pending.append(box)  # the bigger box may now touch others
    return tuple(sorted(b for b in joined if b[2] > 0 and b[3] > 0))[:MAX_BOXES]


def _padded(box: Iterable[int], pad: int) -> tuple[int, int, int, int]:
    x, y, width, height = box
    return x - pad, y - pad, width + 2 * pad, height + 2 * pad


def _clip(box: tuple[int, int, int, int], rows: int, columns: int) -> tuple[int, int, int, int]:
    x, y, width, height = box
    left, top = max(x, 0), max(y, 0)
    right, bottom = min(x + width, columns), min(y + height, rows)
    return left, top, max(right - left, 0), max(bottom - top, 0)


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] <= b[0] + b[2] and b[0] <= a[0] + a[2] and a[1] <= b[1] + b[3] \
        and b[1] <= a[1] + a[3]


def _union(a: tuple[int, int, int, int], b: tuple[int, int, int, int]
           ) -> tuple[int, int, int, int]:
    left, top = min(a[0], b[0]), min(a[1], b[1])
    right, bottom = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return left, top, right - left, bottom - top


def exact(text: str) -> str:
    """`text` as a glob that matches only itself (the rules' text conditions are globs)."""
    return "".join(f"[{c}]" if c in GLOB_SPECIAL else c for c in text)


def rules_text(rules: Iterable[LearnedRule], version: str) -> str:
    """A rules file (the format RELAY_PIXEL_RULES reads) holding `rules`."""
    regions = []
    for rule in rules:
        when: dict[str, str | int] = {"Manufacturer": exact(rule.manufacturer)}
        if rule.model:
            when["ManufacturerModelName"] = exact(rule.model)
        when |= {"Rows": rule.rows, "Columns": rule.columns}
        regions.append({"name": rule.name, "when": when,
                        "boxes": [list(box) for box in rule.boxes],
                        "covers_text": rule.covers_text})
    header = ("# Region rules learned from the text gate and accepted by an admin.\n"
              "# Load with RELAY_PIXEL_RULES (docs/burned-in-text.md).\n")
    return header + yaml.safe_dump({"version": version, "regions": regions},
                                   sort_keys=False, allow_unicode=True, default_flow_style=None)
