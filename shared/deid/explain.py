"""What the profile did to each attribute of one instance, for people to read.

`explain()` de-identifies a header as `deidentify()` does and compares the result
with a copy of the header taken before, attribute by attribute, at every depth:
the plan's action for the tag (and the code of PS3.15 Table E.1-1 under the
chosen options, or the recipe's rule), what became of the element (kept,
changed, emptied, removed, added) and, for a caller allowed to see them, the
values before and after. The engine itself is untouched: nothing here runs
when no one asks for an explanation, so de-identification pays nothing for it.
Pure: a header in, a result and its explanation out.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.datadict import keyword_for_tag

from ..dicom.charset import Charset
from ..dicom.header import Elem, Header, Item, charset_in, text_values
from ..dicom.vocabulary import STRING_VRS
from .config import DeidConfig
from .engine import DeidResult, deidentify
from .originals import IdentifyingValues
from .plan import Plan, Step, plan_for, recipe_tags
from .pseudonyms import Identifiers, Pseudonymizer
from .table import format_tag

SHOWN_CHARACTERS = 200
# The plan's names for its steps, in the words an operator reads in the recipe or docs.
ACTION_NAMES = {"identity": "pseudonym", "hash_value": "hash", "empty": "blank",
                "remove_private": "remove (private)", "private": "keep if safe (private)",
                "recurse": "each item", "scrub": "scrub free text", "uid": "new UID",
                "dummy": "dummy value", "shift": "shift date", "clean": "clean"}


@dataclass(frozen=True)
class AttributeResult:
    path: str  # "(0010,0010)", or "(0008,1115)[0].(0020,000E)" inside a sequence
    keyword: str
    vr: str
    action: str  # what the plan does to the tag
    code: str  # Table E.1-1's code under the options, "recipe", "rule" or "meta"
    outcome: str  # kept, changed, emptied, removed, added
    before: str | None = None  # values: only when asked for
    after: str | None = None

    @property
    def changed(self) -> bool:
        return self.outcome != "kept"


def explain(header: Header, ids: Identifiers, pseudonymizer: Pseudonymizer, config: DeidConfig,
            *, known: IdentifyingValues | None = None, values: bool = False
            ) -> tuple[DeidResult, list[AttributeResult]]:
    """De-identify `header` (in place, as `deidentify` does) and say what happened to
    each attribute. `values`: include the values before and after."""
    before = Header(copy_item(header.meta) if header.meta is not None else None,
                    copy_item(header.body), header.encoding, header.codec)
    result = deidentify(header, ids, pseudonymizer, config, known=known)
    after = result.dataset
    assert isinstance(after, Header)
    plan = plan_for(config)
    out: list[AttributeResult] = []
    walk = _Walk(plan, ids, values, out)
    walk.compare(before.meta or {}, after.meta or {}, "", before.codec, after.codec, meta=True)
    walk.compare(before.body, after.body, "", before.codec, after.codec)
    return result, out


def copy_item(item: Item) -> Item:
    """The structure copied, the values (immutable bytes) shared."""
    return {tag: (elem[0], [copy_item(i) for i in elem[1]]) if type(elem[1]) is list else elem
            for tag, elem in item.items()}


class _Walk:
    def __init__(self, plan: Plan, ids: Identifiers, values: bool,
                 out: list[AttributeResult]) -> None:
        self.plan, self.ids, self.values, self.out = plan, ids, values, out
        self.recipe = recipe_tags(plan)

    def compare(self, before: Item, after: Item, prefix: str, outer_before: Charset,
                outer_after: Charset, meta: bool = False) -> None:
        codec_before, codec_after = charset_in(before, outer_before), charset_in(after, outer_after)
        for tag in sorted(before.keys() | after.keys()):
            old, new = before.get(tag), after.get(tag)
            path = prefix + format_tag(tag)
            action, code = ("rebuild file meta", "meta") if meta else self.action(tag)
            if old is None:
                action, code = ("added", "meta" if meta else "provenance")
            self.out.append(AttributeResult(
                path, keyword_for_tag(tag) or "", (new or old or ("",))[0], action, code,
                _outcome(old, new),
                *((_shown(old, codec_before), _shown(new, codec_after)) if self.values
                  else (None, None))))
            if old is not None and new is not None and type(old[1]) is list \
                    and type(new[1]) is list:
                for index, (item_before, item_after) in enumerate(zip(old[1], new[1],
                                                                      strict=False)):
                    self.compare(item_before, item_after, f"{path}[{index}].", codec_before,
                                 codec_after)

    def action(self, tag: int) -> tuple[str, str]:
        step = self.plan.step(tag)
        code = "recipe" if tag in self.recipe else self.plan.codes.get(tag, "rule")
        return _named(step, self.ids), code


def _named(step: Step | None, ids: Identifiers) -> str:
    if step is None:
        return "keep"
    name, argument = step
    if name == "accession":
        return "pseudonym" if ids.accession_number is not None else _named(argument, ids)
    if name == "replace":
        return "replace"
    return ACTION_NAMES.get(name, name)


def _outcome(old: Elem | None, new: Elem | None) -> str:
    if new is None:
        return "removed"
    if old is None:
        return "added"
    if type(new[1]) is list:
        return "emptied" if not new[1] and old[1] else "kept" if _same(old, new) else "changed"
    if old[1] == new[1]:
        return "kept"
    return "emptied" if not new[1] else "changed"


def _same(old: Elem, new: Elem) -> bool:
    return old[0] == new[0] and len(old[1]) == len(new[1]) and all(
        a.keys() == b.keys() and all(_same(a[t], b[t]) if type(a[t][1]) is list
                                     else a[t] == b[t] for t in a)
        for a, b in zip(old[1], new[1], strict=True))


def _shown(elem: Elem | None, codec: Charset) -> str | None:
    if elem is None:
        return None
    vr, value = elem[0], elem[1]
    if type(value) is list:
        return f"<{len(value)} item(s)>"
    if vr in STRING_VRS:
        text = "\\".join(text_values(elem, codec))
        return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + "..."
    return f"<{len(value)} bytes>"
