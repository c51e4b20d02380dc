"""deidentify(): a dataset and a replacement identity in, a de-identified
dataset and an audit record out. Pure: no I/O, no clock, no randomness."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset

from .config import DeidConfig
from .handlers import Run
from .identifiers import Identifiers, Pseudonymizer
from .originals import IdentifyingValues
from .plan import UNSET, Plan, plan_for
from .provenance import add_provenance, audit_record

# The implementation that wrote the file, not the one that made the image:
# the original ImplementationClassUID names the hospital's software.
IMPLEMENTATION_CLASS_UID = "2.25.203119865915658395283935473520183512065"
IMPLEMENTATION_VERSION = "DICOMRELAY_1"
SOP_INSTANCE_UID = 0x00080018
META_KEEP = frozenset({0x00020001, 0x00020002, 0x00020010})


@dataclass
class DeidResult:
    dataset: Dataset
    audit: dict
    # The originals met while de-identifying this instance: the same set
    # identifying_values() returns, so the caller need not walk twice.
    originals: IdentifyingValues = field(default_factory=IdentifyingValues)


def deidentify(
    ds: Dataset,
    ids: Identifiers,
    pseudonymizer: Pseudonymizer,
    config: DeidConfig,
    *,
    known: IdentifyingValues | None = None,
) -> DeidResult:
    """De-identify `ds` IN PLACE and return it in the result: copying a
    header costs as much as de-identifying it, and the caller reads a fresh
    one per file. PixelData, if present, is left untouched.

    `known`: originals already met in other instances of the series; free
    text is scrubbed of them too, and they are part of `result.originals`.
    """
    plan = plan_for(config)
    run = Run(plan, ids, pseudonymizer, known)
    if ids.extra:
        run.actions = {**plan.actions, **_extra_handlers(ids, plan)}
    run.walk(ds)
    run.scrub_deferred()
    _add_extra(ds, ids, plan)
    codes = add_provenance(ds, config)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        _rebuild_file_meta(ds, meta, run)
    audit = audit_record(run, config, ids, codes)
    return DeidResult(dataset=ds, audit=audit, originals=run.originals)


def _extra_handlers(ids: Identifiers, plan: Plan) -> dict:
    from functools import partial

    from . import handlers as h

    recipe_tags = {r.tag for r in plan.config.recipe.rules} if plan.config.recipe else set()
    out = {}
    for keyword, value in ids.extra.items():
        tag = _keyword_tag(keyword)
        if tag not in recipe_tags:
            out[tag] = partial(h.replace, value=value)
    return out


def _add_extra(ds: Dataset, ids: Identifiers, plan: Plan) -> None:
    """Values from the identifiers service are added when the instance lacks
    them: the service decided the output must carry them."""
    recipe_tags = {r.tag for r in plan.config.recipe.rules} if plan.config.recipe else set()
    for keyword, value in ids.extra.items():
        tag = _keyword_tag(keyword)
        if tag not in ds and tag not in recipe_tags:
            ds.add_new(tag, dictionary_VR(tag), value)


def _keyword_tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise ValueError(f"identifiers carry an unknown attribute keyword {keyword!r}")
    return tag


def _rebuild_file_meta(ds: Dataset, meta: FileMetaDataset, run: Run) -> None:
    """Keep what describes the encoding; replace what names the instance or
    the sending software; drop the rest (source AE titles, private info)."""
    for tag in list(meta.keys()):
        if tag not in META_KEEP and tag != 0x00020003:
            del meta[tag]
            run.removed.add(tag)
    if SOP_INSTANCE_UID in ds:
        meta.MediaStorageSOPInstanceUID = run.values(ds, SOP_INSTANCE_UID)[1][0]
        run.replaced.add(0x00020003)
    elif "MediaStorageSOPInstanceUID" in meta and not run.plan.retains_uids:
        original = meta.MediaStorageSOPInstanceUID
        run.originals.add("UI", original)
        meta.MediaStorageSOPInstanceUID = run.new_uid(original)
        run.replaced.add(0x00020003)
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION


def identifying_values(ds: Dataset, config: DeidConfig | None = None) -> IdentifyingValues:
    """The original identifying values of one instance, as the leak guard
    needs them. With `config`, what the configuration keeps on purpose is
    not counted. Does not modify `ds`."""
    plan = plan_for(config or DeidConfig())
    out = IdentifyingValues()
    _collect(ds, plan, out)
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "MediaStorageSOPInstanceUID" in meta and not plan.retains_uids:
        out.add("UI", meta.MediaStorageSOPInstanceUID)
    return out


def _collect(ds: Dataset, plan: Plan, out: IdentifyingValues) -> None:
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value or ():
                _collect(item, plan, out)
        elif elem.tag in plan.identifying:
            out.add(elem.VR, elem.value)
        elif elem.VR == "UI" and _replaced(plan, elem.tag):
            out.add("UI", elem.value)


def _replaced(plan: Plan, tag: int) -> bool:
    handler = plan.actions.get(tag, UNSET)
    if handler is UNSET:
        handler = plan.resolve(tag)
    return handler is not None
