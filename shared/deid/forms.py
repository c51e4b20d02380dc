"""Whether a value has the form of a VR (PS3.5 6.2), by the data dictionary.

A value the profile keeps goes out byte for byte, and the leak guard does not
read code strings, numbers, times or binary values: what such an element
holds must be what its VR says, or a name written into it would leave
unseen. So the form is checked here, for the dictionary's VR (or the private
dictionary's), not for the VR a file writes:
- text VRs of a fixed form (UI, DA, DT, TM, CS, DS, IS, AS, ...): every value
  passes pydicom's validator (character repertoire, length, pattern); a CS
  holds only letters, digits, space and underscore, 16 at most (lower case
  letters too: older devices write `Chest`; a name in a code string is found
  by comparing it with the series' names, not by its case);
- binary numbers: a whole number of units, and as many values as the
  dictionary's value multiplicity allows (Rows is one US: 20 bytes of text
  written there are not ten rows);
- a value written as text under an attribute whose VR is binary is not a
  value of it, whatever its length: its bytes are a string, not numbers.
"""

from __future__ import annotations

import re

from pydicom import config as pydicom_config
from pydicom.datadict import dictionary_VM
from pydicom.valuerep import validate_value

from ..dicom.charset import Charset
from ..dicom.vocabulary import NUMBER_FORMATS, STRING_VRS

# A binary value parses when its length is a whole number of its units.
UNIT_BYTES = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "FD": 8, "AT": 4, "UV": 8,
              "SV": 8, "OW": 2, "OF": 4, "OD": 8, "OL": 4, "OV": 8}
# Bytes of no stated meaning: any value parses.
ANY_BYTES = frozenset({"OB", "UN"})
# Binary VRs whose value multiplicity counts units (an OW is one value of many words).
COUNTED_VRS = frozenset(NUMBER_FORMATS) | {"AT"}
# Kept values of these VRs are checked before they go out: each has a form
# that a name or an ID does not have (free text, PN, AE and UR do not: they
# are scrubbed or removed by the profile instead).
CHECKED_VRS = frozenset({"UI", "DA", "DT", "TM", "CS", "DS", "IS", "AS"}) | frozenset(UNIT_BYTES)

# Forms checked without PS3.5's maximum length: real files carry decimal
# strings of 19 characters (0.48828125000000001) and ACR-NEMA times with
# colons (10:15:00), and neither holds a letter, so replacing them would lose
# geometry and times and protect nothing. Digits alone are what they may
# hold, whatever the length (see docs: an ID written as a number is not found).
RELAXED = {
    "DS": re.compile(r" *[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)? *"),
    "IS": re.compile(r" *[+-]?\d+ *"),
    "TM": re.compile(r" *(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?"
                     r"|\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?) *"),
    "CS": re.compile(r"[A-Za-z0-9 _]{0,16}"),
}

# The Defined Terms of code strings whose terms the standard lists and that
# every image carries (PS3.3 C.7.3.1.1.1 Modality, current and retired): a
# word of the patient's name there is a coincidence only if it is one of them.
_MODALITIES = (
    "ANN AR ASMT AU BDUS BI BMD CFM CR CT CTPROTOCOL DMS DG DOC DX ECG EEG EMG EOG EPS "
    "ES FID GM HC HD IO IOL IVOCT IVUS KER KO LEN LS MG MR M3D NM OAM OCT OP OPM OPT "
    "OPTBSV OPTENF OPV OSS OT PA PLAN POS PR PT PX REG RESP RF RG RTDOSE RTIMAGE "
    "RTINTENT RTPLAN RTRAD RTRECORD RTSEGANN RTSTRUCT RWV SEG SM SMR SR SRF STAIN "
    "TEXTUREMAP TG US VA XA XAPROTOCOL XC AS CD CF CP CS DD DF DM DS EC FA FS LP MA "
    "MS OPR ST VF")
DEFINED_TERMS = {0x00080060: frozenset(_MODALITIES.split())}

# A series repeats the same kept values (Modality, Image Type, Slice
# Thickness) in every instance: ASCII values are checked once per worker.
_CACHE_SIZE = 4096
_checked: dict[tuple[str, bytes], bool] = {}
_vms: dict[int, str | None] = {}


def parses(vr: str, value: bytes | list, codec: Charset, tag: int | None = None,
           written: str | None = None) -> bool:
    """Whether `value` is a value of `vr`: items for SQ only; for binary
    numbers whole units, as many as the value multiplicity of `tag` allows,
    and not written as text (`written`, the VR the file wrote); for text the
    form of the VR (pydicom's validators). `vr` may be ambiguous ("US or
    SS"): the value parses if it is a value of one of them."""
    if " or " in vr:
        return any(parses(one, value, codec, tag, written) for one in vr.split(" or "))
    if type(value) is list or vr == "SQ":
        return type(value) is list and vr == "SQ"
    assert isinstance(value, bytes)
    if vr not in STRING_VRS:
        if written is not None and written in STRING_VRS and value:
            return False  # text where the dictionary says numbers or bytes
        if vr in UNIT_BYTES:
            unit = UNIT_BYTES[vr]
            return len(value) % unit == 0 and (
                tag is None or vr not in COUNTED_VRS
                or _multiplicity_allows(tag, len(value) // unit))
        return True  # OB, UN: bytes of no stated form
    if not value:
        return True
    key = (vr, value)
    if value.isascii():
        known = _checked.get(key)
        if known is not None:
            return known
    try:
        ok = all(_valid(vr, text) for text in codec.values(vr, value))
    except (ValueError, LookupError):
        ok = False
    if value.isascii():
        if len(_checked) >= _CACHE_SIZE:
            _checked.clear()
        _checked[key] = ok
    return ok


def valid_text(vr: str, text: str) -> bool:
    """One value of a text VR has that VR's form."""
    try:
        return _valid(vr, text)
    except (ValueError, LookupError):
        return False


def _valid(vr: str, text: str) -> bool:
    relaxed = RELAXED.get(vr)
    if relaxed is not None:
        return relaxed.fullmatch(text) is not None
    validate_value(vr, text, pydicom_config.RAISE)
    return True


def _multiplicity_allows(tag: int, count: int) -> bool:
    """`count` values against the dictionary's VM ("1", "3", "1-n", "2-2n",
    "1-3"); a tag the dictionary does not describe allows any count."""
    if count == 0:
        return True  # an empty value: Type 2, present without a value
    try:
        vm = _vms[tag]
    except KeyError:
        try:
            vm = _vms[tag] = dictionary_VM(tag)
        except KeyError:
            vm = _vms[tag] = None
    if not vm:
        return True
    try:
        low, _, high = vm.partition("-")
        if not high:
            return count == int(low)
        if high.endswith("n"):
            step = int(high[:-1] or 1)
            return count >= int(low) and count % step == 0
        return int(low) <= count <= int(high)
    except ValueError:
        return True
