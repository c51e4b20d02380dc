"""The leak guard on a parsed `Header`: the same rules as `originals.find_leaks`
on a Dataset, without building an element object per value.

Most outputs hold no original at all, so a header is first checked as a
whole: UIDs and dates by set membership, and the text of every searchable
element joined into one string searched once for every original. Only when
that finds something is the header walked again, element by element, to name
the paths that hold it. Joining cannot hide a hit: each element's text is a
substring of the whole, separated by a newline (not a word character, so a
whole-word match stays a whole-word match).
"""

from __future__ import annotations

from .header import SINGLE_VALUED, TEXTUAL_VRS, Header, Item
from .originals import BINARY_VRS, BULK_LIMIT, NUMERIC_VRS, PIXEL_TAGS, IdentifyingValues
from .table import format_tag

META_CODEC = "latin-1"


def find_leaks_in_header(header: Header, originals: IdentifyingValues) -> list[str]:
    if not len(originals):
        return []
    texts: list[str] = []
    suspect = False
    if header.meta is not None:
        suspect = _gather(header.meta, META_CODEC, originals, texts)
    suspect = _gather(header.body, header.codec, originals, texts) or suspect
    if not suspect and not originals.search("\n".join(texts)):
        return []
    hits: list[str] = []
    if header.meta is not None:
        _scan(header.meta, "", META_CODEC, originals, hits)
    _scan(header.body, "", header.codec, originals, hits)
    return hits


def _gather(item: Item, codec: str, originals: IdentifyingValues, texts: list[str]) -> bool:
    """Collect the searchable text of `item`; True if a UID or date is an original."""
    uids, dates = originals.uids, originals.dates
    suspect = False
    for tag, elem in item.items():
        value, vr = elem[1], elem[0]
        if type(value) is list:
            for sub in value:
                suspect = _gather(sub, codec, originals, texts) or suspect
        elif not value or vr in NUMERIC_VRS or tag in PIXEL_TAGS:
            continue
        elif vr == "UI":
            suspect = suspect or any(v in uids for v in _values(value, vr, codec))
        elif vr == "DA" or vr == "DT":
            suspect = suspect or any(v[:8] in dates for v in _values(value, vr, codec))
        elif vr in BINARY_VRS:
            if len(value) <= BULK_LIMIT:
                texts.append(value.decode("latin-1"))
        else:
            texts.append(value.decode(codec, "replace"))
    return suspect


def _scan(item: Item, prefix: str, codec: str, originals: IdentifyingValues,
          hits: list[str]) -> None:
    for tag, elem in sorted(item.items()):
        if tag in PIXEL_TAGS:
            continue
        path = prefix + format_tag(tag)
        if type(elem[1]) is list:
            for i, sub in enumerate(elem[1]):
                _scan(sub, f"{path}[{i}].", codec, originals, hits)
        elif _holds_original(elem[0], elem[1], codec, originals):
            hits.append(path)


def _values(value: bytes, vr: str, codec: str) -> list[str]:
    text = value.decode(codec, "replace")
    parts = [text] if vr in SINGLE_VALUED or vr not in TEXTUAL_VRS else text.split("\\")
    return [p.strip().rstrip("\x00").strip() for p in parts]


def _holds_original(vr: str, value: bytes, codec: str, originals: IdentifyingValues) -> bool:
    """As `originals._holds_original`, on the bytes of one element."""
    if not value or vr in NUMERIC_VRS:
        return False
    if vr in BINARY_VRS:
        if len(value) > BULK_LIMIT:
            return False
        texts = [value.decode("latin-1").strip().rstrip("\x00")]
    else:
        texts = _values(value, vr, codec)
    if vr == "UI":
        return any(t in originals.uids for t in texts)
    if vr in ("DA", "DT"):
        return any(t[:8] in originals.dates for t in texts)
    return any(originals.search(t) for t in texts)
