"""What the profile does to each tag under one configuration, as data.

`plan_for(config)` turns the PS3.15 table, the chosen options and the recipe
into `Plan.steps`: tag -> `Step`, an action's name and its argument, or
None to keep the element as it is. Tags the table does not list (private,
repeating groups, UIDs, dates, free text) get a step by rule the first time
they are met (`Plan.step`), and the result is cached. What each action does
to an element is `actions.py`'s business; this module names them only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydicom.datadict import dictionary_VR

from ..dicom.vocabulary import FREE_TEXT_VRS
from .codes import code_steps
from .config import DeidConfig
from .recipe import SafePrivate
from .structured import structured_steps
from .table import action_for, entries

# (action, argument): the argument is the identity field for "identity", the
# value for "replace", the step taken without a replacement for "accession".
Step = tuple[str, Any]

PATIENT_NAME = 0x00100010
PATIENT_ID = 0x00100020
ACCESSION_NUMBER = 0x00080050
REMOVE: Step = ("remove", None)
RECURSE: Step = ("recurse", None)
CLEAN: Step = ("clean", None)
DUMMY: Step = ("dummy", None)

_BY_CODE: dict[str, Step] = {"X": REMOVE, "Z": ("empty", None), "D": ("dummy", None),
                             "U": ("uid", None), "C": CLEAN}
_RECIPE: dict[str, Step | None] = {"keep": None, "remove": REMOVE, "blank": ("empty", None),
                                   "hash": ("hash_value", None), "shift": ("shift", None)}
_GRAPHICS_GROUPS = frozenset(range(0x5000, 0x5020, 2)) | frozenset(range(0x6000, 0x6020, 2))


@dataclass
class Plan:
    config: DeidConfig
    steps: dict[int, Step | None] = field(default_factory=dict)
    identifying: frozenset[int] = frozenset()
    sequences: frozenset[int] = frozenset()
    codes: dict[int, str] = field(default_factory=dict)
    safe_private: frozenset[tuple[int, str, int]] = frozenset()
    # Dates an option keeps in the clear (rtnLongFullDatesOpt): no secret of the output.
    kept_dates: frozenset[int] = frozenset()
    _vrs: dict[int, str | None] = field(default_factory=dict)
    # The steps as functions, filled on first use by `actions.handlers_for`.
    handlers: dict[int, Any] = field(default_factory=dict)

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

    def step(self, tag: int) -> Step | None:
        try:
            return self.steps[tag]
        except KeyError:
            step = self.steps[tag] = self._rule(tag)
            return step

    def _rule(self, tag: int) -> Step | None:
        group, element = tag >> 16, tag & 0xFFFF
        if group & 1:
            return ("private", None) if self.keeps_safe_private else ("remove_private", None)
        if element == 0:
            return REMOVE  # group lengths: retired, and wrong once values change
        if group in _GRAPHICS_GROUPS:
            return CLEAN if "cleanGraphOpt" in self.config.options else REMOVE
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            return REMOVE  # a public tag nobody can interpret cannot be judged safe
        return self._by_vr(vr)

    def _by_vr(self, vr: str) -> Step | None:
        if vr == "UI":
            return None if self.retains_uids else ("uid", None)
        if vr in ("DA", "DT"):
            return ("shift", None) if self.config.shifts_dates else None
        if vr == "SQ":
            return RECURSE
        if vr == "PN":
            # A person's name the table does not list (an inspector, an
            # evaluator, a verifying observer): a name is an identifier
            # wherever it is, and scrubbing it of the series' own originals
            # would keep a stranger's name. A dummy, since the engine does
            # not know the attribute's Type in every IOD and a dummy is
            # valid under any Type; a recipe may keep it.
            return DUMMY
        if vr in FREE_TEXT_VRS:
            return ("scrub", None)
        return None


@cache
def plan_for(config: DeidConfig) -> Plan:
    """Plans are cached per configuration: a worker builds its table once."""
    plan = Plan(config=config)
    for tag, entry in entries().items():
        code = action_for(entry, config.options)
        plan.codes[tag] = code
        plan.steps[tag] = _table_step(tag, code)
    identifying = {t for t, e in entries().items() if _identifies(e, plan.codes[t], t)}
    plan.steps[PATIENT_NAME] = ("identity", "patient_name")
    plan.steps[PATIENT_ID] = ("identity", "patient_id")
    plan.steps[ACCESSION_NUMBER] = ("accession", plan.steps[ACCESSION_NUMBER])
    plan.steps.update(structured_steps(plan.codes))
    plan.steps.update(code_steps())
    if config.recipe is not None:
        for rule in config.recipe.rules:
            plan.steps[rule.tag] = (("replace", rule.value) if rule.action == "replace"
                                    else _RECIPE[rule.action])
            plan.codes[rule.tag] = rule.action
            if rule.action == "keep":
                identifying.discard(rule.tag)
    plan.identifying = frozenset(identifying)
    plan.sequences = frozenset(t for t in entries() if _vr(t) == "SQ")
    plan.kept_dates = frozenset(t for t, code in plan.codes.items()
                                if code in ("K", "keep") and _vr(t) in ("DA", "DT"))
    plan.safe_private = _safe_keys(config)
    return plan


def recipe_tags(plan: Plan) -> set[int]:
    recipe = plan.config.recipe
    return {r.tag for r in recipe.rules} if recipe is not None else set()


def _vr(tag: int) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def _table_step(tag: int, code: str) -> Step | None:
    if code == "K":
        # Kept sequences still go through the profile at every depth.
        return RECURSE if _vr(tag) == "SQ" else None
    if tag >> 16 == 0x0002:
        return None  # the file meta group is rebuilt as a whole, see engine.rebuild_meta
    return _BY_CODE[code]


def _identifies(entry, code: str, tag: int) -> bool:
    """Whose original value the leak guard looks for: identifiers, not the
    descriptions that may merely contain one, and nothing the configuration
    keeps on purpose."""
    if entry.descriptor or code == "K":
        return False
    return code != "C" or _vr(tag) in ("DA", "DT", "UI")


def _safe_keys(config: DeidConfig) -> frozenset[tuple[int, str, int]]:
    entries_: set[SafePrivate] = set(config.safe_private)
    if config.recipe is not None:
        entries_ |= set(config.recipe.safe_private)
    return frozenset((e.group, e.creator.strip().upper(), e.element) for e in entries_)
