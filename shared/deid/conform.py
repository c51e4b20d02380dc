"""Elements written under a VR the data dictionary does not give their tag.

The action an attribute gets is decided by what the attribute is, and that is
the data dictionary's VR, not the one a file writes: a StudyInstanceUID
written as LO is still a UID to replace, a StudyDate written as LO a date, a
name written as OB a name. The parser reads such an element as the
dictionary's VR and lists it (`Header.misfits`); before the profile runs, each
is checked here. A value that parses as the dictionary's VR then goes through
the action of its attribute like any other. One that does not is never kept:
a UID is replaced by a minted one (the same original always gives the same
replacement, so references stay whole), an element the profile removes is
removed, and anything else is given the dummy of its dictionary VR. Its
original is remembered either way, for the scrub of free text and the leak
check.
"""

from __future__ import annotations

from pydicom import config as pydicom_config
from pydicom.valuerep import validate_value

from ..dicom.charset import Charset
from ..dicom.header import Header, Item, implicit_vr, text_bytes
from ..dicom.vocabulary import STRING_VRS
from .actions import Run, collect_all
from .values import dummy_value

# A binary value parses when its length is a whole number of its units.
UNIT_BYTES = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "FD": 8, "AT": 4, "UV": 8,
              "SV": 8, "OW": 2, "OF": 4, "OD": 8, "OL": 4, "OV": 8}
# Bytes of no stated meaning: any value parses.
ANY_BYTES = frozenset({"OB", "UN"})
REMOVING = frozenset({"remove", "remove_private"})


def conform(header: Header, run: Run) -> None:
    """Check every misfit of `header` (see the module's text); the audit lists
    the tags of those replaced or removed."""
    for item, tag, _written in header.misfits:
        if tag in item:
            _conform(item, tag, run)
    header.misfits = []


def settle_kept(item: Item, tag: int, run: Run) -> None:
    """A UID, date or time the profile keeps (an option, a tag the table does
    not list), checked like a misfit: kept only if it has its VR's form."""
    _conform(item, tag, run, item[tag][0])


def _conform(item: Item, tag: int, run: Run, vr: str | None = None) -> None:
    vr = vr or implicit_vr(tag)
    elem = item[tag]
    if parses(vr, elem[1], run.codec):
        return
    _remember(item, tag, run, vr)
    step = run.plan.step(tag)
    if vr == "UI" and type(elem[1]) is bytes:
        text = elem[1].decode("latin-1").strip("\x00 ")
        item[tag] = ("UI", text_bytes("UI", [run.pseudo.uid(text)] if text else []))
        run.replaced.add(tag)
    elif vr == "SQ" or type(elem[1]) is list or (step is not None and step[0] in REMOVING):
        del item[tag]
        run.removed.add(tag)
    else:
        item[tag] = (vr, _dummy(vr))
        run.replaced.add(tag)


def parses(vr: str, value: bytes | list, codec: Charset) -> bool:
    """Whether `value` is a value of `vr`: items for SQ only, whole units for
    binary numbers, the form of the VR (pydicom's validators) for text."""
    if type(value) is list or vr == "SQ":
        return type(value) is list and vr == "SQ"
    assert isinstance(value, bytes)
    if vr in UNIT_BYTES:
        return len(value) % UNIT_BYTES[vr] == 0
    if vr in ANY_BYTES or vr not in STRING_VRS:
        return True
    try:
        for text in codec.values(vr, value):
            validate_value(vr, text, pydicom_config.RAISE)
    except (ValueError, LookupError):
        return False
    return True


def _remember(item: Item, tag: int, run: Run, vr: str) -> None:
    """The original of a value about to go, for the scrub and the leak check;
    read as text whatever it was written as, since the dictionary says what it
    means and a value that does not parse may still spell an identifier."""
    elem = item[tag]
    if type(elem[1]) is list:
        for sub in elem[1]:
            collect_all(sub, run, run.codec)
        return
    if tag not in run.plan.identifying and vr not in ("UI", "PN", "DA", "DT"):
        return
    text = elem[1].decode(run.codec.codec or "latin-1", "replace").strip("\x00 ")
    if text:
        run.originals.add(vr if vr in STRING_VRS else "LO", [text])


def _dummy(vr: str) -> bytes:
    value = dummy_value(vr)
    if isinstance(value, bytes):
        return value
    if vr in STRING_VRS:
        return text_bytes(vr, [str(value)])
    return bytes(UNIT_BYTES.get(vr, 0))
