"""Elements written under a VR the data dictionary does not give their tag,
and kept values that are not of their VR.

The action an attribute gets is decided by what the attribute is, and that is
the data dictionary's VR, not the one a file writes: a StudyInstanceUID
written as LO is still a UID to replace, a StudyDate written as LO a date, a
name written as OB a name. The parser reads such an element as the
dictionary's VR and lists it (`Header.misfits`); before the profile runs, each
is checked here. A value that parses as the dictionary's VR (`forms.parses`)
then goes through the action of its attribute like any other. So does every
value the profile keeps or cleans without reading it (a code string, a number,
a time, a binary value: `settle_kept`), since the leak guard does not read
those either.

A value that does not parse is never kept:
- a UID is replaced by a minted one (the same original always gives the same
  replacement, so references stay whole);
- an element the profile removes, or a sequence, is removed;
- a value that describes the pixel data (Rows, Bits Allocated, ...) refuses
  the image (`ProfileError`): a made-up value would misdescribe the pixels,
  and an image without it is no image;
- any other binary attribute (a LUT descriptor, a smallest pixel value, an
  angle) is removed: a made-up number would be a false measurement, and these
  are optional or conditional in the IODs;
- a text value (CS, DS, IS, AS, TM, DA, ...) is given the dummy of its
  dictionary VR, value by value (Image Type ORIGINAL\\PRIMARY\\<a name> keeps
  its first two values), so a Type 1 or 2 attribute (Modality, Image Type)
  stays present and valid.
Its original is remembered either way, for the scrub of free text and the
leak check.
"""

from __future__ import annotations

import codecs
import warnings

from pydicom.charset import convert_encodings, python_encoding

from ..dicom.header import Header, Item, implicit_vr, text_bytes
from ..dicom.vocabulary import SPECIFIC_CHARACTER_SET, STRING_VRS
from .actions import PIXEL_DESCRIPTION, ProfileError, Run, collect_all, defer_code
from .forms import UNIT_BYTES, parses, valid_text
from .values import dummy_value

REMOVING = frozenset({"remove", "remove_private"})


def conform(header: Header, run: Run) -> None:
    """Check every misfit of `header` (see the module's text); the audit lists
    the tags of those replaced or removed."""
    for item, tag, written in header.misfits:
        if tag in item:
            _conform(item, tag, run, written=written)
    header.misfits = []


def settle_kept(item: Item, tag: int, run: Run) -> None:
    """A value the profile keeps (or cleans without reading: a time, a
    number, a code string) checked like a misfit: kept only if it has the
    form of its dictionary VR. A code string that has it may still spell a
    name: it is also looked at once the instance's originals are known
    (`Run.scrub_deferred`)."""
    if tag == SPECIFIC_CHARACTER_SET:
        _settle_charset(item, tag)
        return
    vr = run.plan.vr(tag) or item[tag][0]
    if " or " in vr:  # ambiguous (US or SS): the file chose one, checked as that
        vr = item[tag][0]
    if _conform(item, tag, run, vr) and item[tag][0] == "CS":
        defer_code(item, tag, run)


def _conform(item: Item, tag: int, run: Run, vr: str | None = None,
             written: str | None = None) -> bool:
    """Whether the element stays as it is; if not, it is settled (see the
    module's text)."""
    vr = vr or implicit_vr(tag)
    elem = item[tag]
    if parses(vr, elem[1], run.codec, tag, written):
        return True
    _remember(item, tag, run, vr)
    step = run.plan.step(tag)
    if vr == "UI" and type(elem[1]) is bytes:
        text = elem[1].decode("latin-1").strip("\x00 ")
        item[tag] = ("UI", text_bytes("UI", [run.pseudo.uid(text)] if text else []))
        run.replaced.add(tag)
    elif vr == "SQ" or type(elem[1]) is list or (step is not None and step[0] in REMOVING):
        del item[tag]
        run.removed.add(tag)
    elif tag in PIXEL_DESCRIPTION:
        raise ProfileError("a value that describes the pixel data is not of its VR")
    elif vr not in STRING_VRS and (step is None or step[0] != "dummy"):
        del item[tag]
        run.removed.add(tag)
    else:
        item[tag] = (vr, _dummies(vr, elem[1], run) if vr in STRING_VRS else _dummy(vr))
        run.replaced.add(tag)
    return False


def _settle_charset(item: Item, tag: int) -> None:
    """Specific Character Set is kept as the standard terms of what it was
    read as: a term pydicom knows under another spelling (`ISO-IR 100`)
    becomes its standard one (`ISO_IR 100`), so readers decode the output as
    the relay wrote it; an unknown term (where a name could hide) is dropped,
    as pydicom reads it as the default repertoire anyway."""
    elem = item[tag]
    if type(elem[1]) is not bytes:
        return
    terms = elem[1].decode("latin-1").rstrip("\x00 ").split("\\")
    if all(t.strip() in python_encoding or not t.strip() for t in terms):
        return
    item[tag] = (elem[0], text_bytes("CS", [_standard_term(t.strip()) for t in terms]))


def _standard_term(term: str) -> str:
    if not term or term in python_encoding:
        return term
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            (codec,) = convert_encodings([term])
        except (LookupError, ValueError):
            return ""
    extended = "2022" in term
    try:
        name = codecs.lookup(codec).name
    except LookupError:
        return ""
    same = [known for known, python in python_encoding.items()
            if known and ("2022" in known) == extended and codecs.lookup(python).name == name]
    exact = [known for known in same if python_encoding[known] == codec]
    return (exact or same or [""])[0]


def _dummies(vr: str, value: bytes | list, run: Run) -> bytes:
    """Each value that is not of `vr` replaced by the dummy, the others kept
    (they have the form, and are judged as such); all of it when the value
    does not even decode, or was written as bytes of another kind."""
    dummy = str(dummy_value(vr))
    if type(value) is bytes:
        try:
            values = run.codec.values(vr, value)
        except (ValueError, LookupError):
            values = []
        if values and "\ufffd" not in "".join(values):
            return run.codec.encode(vr, [v if valid_text(vr, v) else dummy for v in values])
    return text_bytes(vr, [dummy])


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
