"""PS3.15 Table E.1-1 as data, and the rule that turns its codes into one action.

The table gives each attribute a Basic Profile code and, per option, a code
that replaces it when the option is chosen. Compound codes (X/Z, X/D, Z/D,
X/Z/D, X/Z/U*) depend on whether the attribute is Type 1, 2 or 3 in the IOD
(PS3.15 E.3). The engine does not know the IOD of every instance, so it uses
the type the attribute has in the common IODs (`IOD_TYPE`): kept with a dummy
where some common IOD requires a value (Type 1), kept empty where it must be
present (Type 2), removed otherwise. Either way nothing identifying remains,
and dciodvfy and Orthanc keep accepting the output.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

OPTIONS: tuple[str, ...] = (
    "rtnSafePrivOpt",
    "rtnUIDsOpt",
    "rtnDevIdOpt",
    "rtnInstIdOpt",
    "rtnPatCharsOpt",
    "rtnLongFullDatesOpt",
    "rtnLongModifDatesOpt",
    "cleanDescOpt",
    "cleanStructContOpt",
    "cleanGraphOpt",
)

# Options whose 'C' means "the attribute may hold identifying free text":
# their attributes are descriptors, not identifiers themselves.
DESCRIPTOR_OPTIONS = frozenset({"cleanDescOpt", "cleanStructContOpt", "cleanGraphOpt"})

TABLE_FILE = "confidentiality_profile_attributes.json"

# Type of the compound-coded attributes in the common composite IODs (CT, MR,
# CR/DX, US, PET, NM, SC, SR, RT, presentation states, enhanced multi-frame).
# 1: some common IOD requires a value; 2: some common IOD requires presence.
# Absent here means Type 3 everywhere it matters, hence removed.
IOD_TYPE: dict[int, int] = {
    0x00080023: 1,  # Content Date: Type 1 in SR Document General, 2C in images
    0x00080033: 1,  # Content Time
    0x0008002A: 1,  # Acquisition DateTime: 1C in enhanced MR/CT image modules
    0x00181000: 1,  # Device Serial Number: Type 1 in Enhanced General Equipment
    0x00100020: 2,  # Patient ID
    0x00700084: 2,  # Content Creator's Name: Type 2 in presentation states
    0x00180010: 2,  # Contrast/Bolus Agent: Type 2 in the Contrast/Bolus module
    0x00400555: 2,  # Acquisition Context Sequence: Type 2 in DX, MG, IO, ophthalmic
    0x300A00B2: 2,  # Treatment Machine Name: Type 2 in RT Beams
    0x300A0006: 2,  # RT Plan Date: Type 2 in RT General Plan
    0x300A0007: 2,  # RT Plan Time
    0x30080250: 2,  # Treatment Date: Type 2 in RT treatment records
    0x30080251: 2,  # Treatment Time
    0x00189919: 2,  # Instruction Performed DateTime
}

# Sequences of instance references. X/Z/U* lets the UIDs inside be replaced
# instead of dropping the sequence; they are kept so that references between
# de-identified instances (localisers, source images) stay usable, and their
# items still go through the profile at depth.
KEEP_REFERENCES = frozenset({0x00081140, 0x00082112})


# Codes the published extraction of the table lacks. PS3.15 E.3.9: under the
# Retain UIDs Option every UID the Basic Profile replaces is kept, yet the
# extraction gives no rtnUIDsOpt code to these two rows. Without it, an SR
# item's UID (0040,A124) that names a kept instance is replaced and the
# reference breaks. Applied on loading: the JSON stays the published file,
# whose hash the audit records.
OPTION_CORRECTIONS: dict[int, dict[str, str]] = {
    0x0040A124: {"rtnUIDsOpt": "K"},  # UID
    0x04000100: {"rtnUIDsOpt": "K"},  # Digital Signature UID
}


@dataclass(frozen=True)
class Entry:
    tag: int
    name: str
    basic: str
    options: dict[str, str]
    descriptor: bool


def parse_tag(text: str) -> int:
    """'(0008,0050)' -> 0x00080050."""
    group, element = text.strip("()").split(",")
    return (int(group, 16) << 16) | int(element, 16)


@lru_cache(maxsize=8192)
def format_tag(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


@cache
def table_bytes() -> bytes:
    return (resources.files("relay_shared.deid") / "data" / TABLE_FILE).read_bytes()


@cache
def table_sha256() -> str:
    return hashlib.sha256(table_bytes()).hexdigest()


@cache
def entries() -> dict[int, Entry]:
    """Entries with a concrete tag; the repeating-group and private rows are
    handled by rule in the engine (see `plan.py`)."""
    out: dict[int, Entry] = {}
    for row in json.loads(table_bytes()):
        try:
            tag = parse_tag(row["tag"])
        except ValueError:  # "(50XX,XXXX)", "(GGGG,EEEE) WHERE GGGG IS ODD"
            continue
        options = {k: v for k, v in row.items() if k in OPTIONS}
        options.update(OPTION_CORRECTIONS.get(tag, {}))
        out[tag] = Entry(
            tag=tag,
            name=row["name"],
            basic=row["basicProfile"],
            options=options,
            descriptor=bool(DESCRIPTOR_OPTIONS & options.keys()),
        )
    return out


def resolve_compound(tag: int, code: str) -> str:
    """One of D, Z, X, U, K, C for a possibly compound code (PS3.15 E.3)."""
    if "/" not in code:
        return code
    allowed = set(code.replace("*", "").split("/"))
    if tag in KEEP_REFERENCES and "U" in allowed:
        return "U"
    iod_type = IOD_TYPE.get(tag, 3)
    if iod_type == 1:
        return "D" if "D" in allowed else "Z"
    if iod_type == 2:
        return "Z" if "Z" in allowed else "D"
    return "X" if "X" in allowed else "Z"


def action_for(entry: Entry, options: frozenset[str]) -> str:
    """The action under the chosen options: an option's code replaces the
    Basic Profile's; when two chosen options disagree, C (clean) wins over K
    (keep), the stricter of the two."""
    chosen = [code for name, code in entry.options.items() if name in options]
    if chosen:
        return "C" if "C" in chosen else "K"
    return resolve_compound(entry.tag, entry.basic)
