"""DIMSE status codes the relay returns or reads (PS3.7 Annex C), named once."""

SUCCESS = 0x0000
CANCELLED = 0xFE00
PENDING = frozenset({0xFF00, 0xFF01})
WARNING = 0xB000
OUT_OF_RESOURCES = 0xA700  # C-STORE: refused, out of resources
CANNOT_UNDERSTAND = 0xC210  # C-STORE: error, cannot understand
MOVE_DESTINATION_UNKNOWN = 0xA801
UNABLE_TO_PROCESS = 0xC000

MEANINGS = {0xA701: "out of resources", MOVE_DESTINATION_UNKNOWN: "move destination unknown",
            0xA900: "identifier does not match SOP class", UNABLE_TO_PROCESS: "unable to process",
            CANCELLED: "cancelled"}

