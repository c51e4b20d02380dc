"""The action table of one configuration, computed once: tag -> handler.

The engine walks a dataset once and, for each element, looks its tag up in
`Plan.actions`; `None` means keep as it is. Tags the table does not list
(private, repeating groups, UIDs, dates, free text) get a handler by rule the
first time they are met, and the result is cached in the same dictionary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, partial

from pydicom.datadict import dictionary_VR

from . import handlers as h
from .config import DeidConfig
from .recipe import SafePrivate
from .table import action_for, entries

Handler = Callable[..., None] | None
UNSET = h.UNSET

PATIENT_NAME = 0x00100010
PATIENT_ID = 0x00100020
ACCESSION_NUMBER = 0x00080050

_BY_CODE = {"X": h.remove, "Z": h.empty, "D": h.dummy, "U": h.uid, "C": h.clean}
_RECIPE = {"keep": None, "remove": h.remove, "blank": h.empty, "hash": h.hash_value,
           "shift": h.shift}


@dataclass
class Plan:
    config: DeidConfig
    actions: dict[int, Handler] = field(default_factory=dict)
    identifying: frozenset[int] = frozenset()
    sequences: frozenset[int] = frozenset()
    codes: dict[int, str] = field(default_factory=dict)
    safe_private: frozenset[tuple[int, str, int]] = frozenset()
    _vrs: dict[int, str | None] = field(default_factory=dict)
    # The same table for the raw engine (rawengine.raw_actions), built on first use.
    raw_actions: dict[int, Handler] = field(default_factory=dict)

    @property
    def retains_uids(self) -> bool:
        return "rtnUIDsOpt" in self.config.options

    @property
    def keeps_safe_private(self) -> bool:
        return "rtnSafePrivOpt" in self.config.options

    def vr(self, tag: int) -> str | None:
        """The dictionary VR (None for private and unknown tags), cached:
        implicit VR files do not carry it."""
        try:
            return self._vrs[tag]
        except KeyError:
            vr = self._vrs[tag] = None if tag >> 16 & 1 else _vr(tag)
            return vr

    def resolve(self, tag: int) -> Handler:
        handler = self._rule(tag)
        self.actions[tag] = handler
        return handler

    def _rule(self, tag: int) -> Handler:
        group, element = tag >> 16, tag & 0xFFFF
        if group & 1:
            return h.private if self.keeps_safe_private else h.remove_private
        if element == 0:
            return h.remove  # group lengths: retired, and wrong once values change
        if group in _GRAPHICS_GROUPS:
            return h.clean if "cleanGraphOpt" in self.config.options else h.remove
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            return h.remove  # a public tag nobody can interpret cannot be judged safe
        return self._by_vr(vr)

    def _by_vr(self, vr: str) -> Handler:
        if vr == "UI":
            return None if self.retains_uids else h.uid
        if vr in ("DA", "DT"):
            return h.shift if self.config.shifts_dates else None
        if vr == "SQ":
            return h.recurse
        if vr in h.TEXT_VRS:
            return h.scrub
        return None


_GRAPHICS_GROUPS = frozenset(range(0x5000, 0x5020, 2)) | frozenset(range(0x6000, 0x6020, 2))


@cache
def plan_for(config: DeidConfig) -> Plan:
    """Plans are cached per configuration: a worker builds its table once."""
    plan = Plan(config=config)
    for tag, entry in entries().items():
        code = action_for(entry, config.options)
        plan.codes[tag] = code
        plan.actions[tag] = _table_handler(plan, tag, code)
    identifying = {t for t, e in entries().items() if _identifies(e, plan.codes[t], t)}
    plan.actions[PATIENT_NAME] = partial(h.identity, field="patient_name")
    plan.actions[PATIENT_ID] = partial(h.identity, field="patient_id")
    plan.actions[ACCESSION_NUMBER] = partial(h.accession, fallback=plan.actions[ACCESSION_NUMBER])
    if config.recipe is not None:
        for rule in config.recipe.rules:
            plan.actions[rule.tag] = _recipe_handler(rule.action, rule.value)
            plan.codes[rule.tag] = rule.action
            if rule.action == "keep":
                identifying.discard(rule.tag)
    plan.identifying = frozenset(identifying)
    plan.sequences = frozenset(t for t in entries() if _vr(t) == "SQ")
    plan.safe_private = _safe_keys(config)
    return plan


def _vr(tag: int) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def _table_handler(plan: Plan, tag: int, code: str) -> Handler:
    if code == "K":
        # Kept sequences still go through the profile at every depth.
        return h.recurse if _vr(tag) == "SQ" else None
    if tag >> 16 == 0x0002:
        return None  # the file meta group is rebuilt as a whole, see handlers.file_meta
    return _BY_CODE[code]


def _identifies(entry, code: str, tag: int) -> bool:
    """Whose original value the leak guard looks for: identifiers, not the
    descriptions that may merely contain one, and nothing the configuration
    keeps on purpose."""
    if entry.descriptor or code == "K":
        return False
    return code != "C" or _vr(tag) in ("DA", "DT", "UI")


def _recipe_handler(action: str, value: str | None) -> Handler:
    if action == "replace":
        return partial(h.replace, value=value)
    return _RECIPE[action]


def _safe_keys(config: DeidConfig) -> frozenset[tuple[int, str, int]]:
    entries_: set[SafePrivate] = set(config.safe_private)
    if config.recipe is not None:
        entries_ |= set(config.recipe.safe_private)
    return frozenset((e.group, e.creator.strip().upper(), e.element) for e in entries_)
