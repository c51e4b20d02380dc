"""deidentify(): a header and a replacement identity in, a de-identified
header and an audit record out. Pure: no I/O, no clock, no randomness."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset

from ..dicom.charset import DEFAULT, Charset
from ..dicom.header import (
    Header,
    Item,
    charset_in,
    header_from_dataset,
    implicit_vr,
    text_bytes,
    text_values,
)
from ..dicom.vocabulary import (
    FIRST_PIXEL_TAG,
    LAST_PIXEL_TAG,
    MEDIA_SOP_INSTANCE_UID,
    SOP_INSTANCE_UID,
    STRING_VRS,
)
from .actions import ProfileError, Run, handler_for
from .config import DeidConfig
from .conform import conform, settle_kept
from .originals import IdentifyingValues
from .plan import Plan, plan_for, recipe_tags
from .provenance import audit_record, method_codes, provenance
from .pseudonyms import Identifiers, Pseudonymizer

# The implementation that wrote the file, not the one that made the image:
# the original ImplementationClassUID names the hospital's software.
IMPLEMENTATION_CLASS_UID = "2.25.203119865915658395283935473520183512065"
IMPLEMENTATION_VERSION = "DICOMRELAY_1"
META_KEEP = frozenset({0x00020001, 0x00020002, 0x00020010})


@dataclass
class DeidResult:
    dataset: Header | Dataset  # the same kind as was given
    audit: dict
    # The originals met while de-identifying this instance (less those already
    # in `known`): the same set identifying_values() returns, so the caller
    # need not walk twice.
    originals: IdentifyingValues = field(default_factory=IdentifyingValues)


def deidentify(
    ds: Header | Dataset,
    ids: Identifiers,
    pseudonymizer: Pseudonymizer,
    config: DeidConfig,
    *,
    known: IdentifyingValues | None = None,
) -> DeidResult:
    """De-identify a header, IN PLACE: a `Header` (see `streamcopy.load_header`)
    or, converted once at this edge, a pydicom Dataset. The result holds the
    same kind. Pixel data is left untouched.

    `known`: originals already met in other instances of the series; free
    text is scrubbed of them too. `result.originals` holds what this
    instance adds to them (all of its originals when `known` is None), so
    that `known.update(result.originals)` is the series' set and a caller
    keeping every result does not keep a copy of `known` per instance.
    """
    if isinstance(ds, Dataset):
        result = deidentify(header_from_dataset(ds), ids, pseudonymizer, config, known=known)
        assert isinstance(result.dataset, Header)
        out = result.dataset.to_dataset()
        for elem in ds[FIRST_PIXEL_TAG:LAST_PIXEL_TAG + 1]:  # the image, as it came
            out[elem.tag] = elem
        if getattr(ds, "file_meta", None) is None:
            del out.file_meta
        result.dataset = out
        return result
    plan = plan_for(config)
    run = Run(plan, ids, pseudonymizer, ds, known)
    if ids.extra:
        run.actions = {**run.actions, **_extra_handlers(ids, plan)}
    run.kept_check = settle_kept
    conform(ds, run)
    run.walk(ds.body)
    run.scrub_deferred()
    _add_extra(ds, ids, plan)
    ds.body.update(provenance(config, ds.encoding.implicit, ds.encoding.little))
    if ds.meta is not None:
        _rebuild_meta(ds, run)
    audit = audit_record(run, config, ids, method_codes(config))
    return DeidResult(dataset=ds, audit=audit, originals=run.originals)


def _extra_handlers(ids: Identifiers, plan: Plan) -> dict:
    skip = recipe_tags(plan)
    return {tag: handler_for(("replace", value)) for tag, value in _extra(ids) if tag not in skip}


def _add_extra(header: Header, ids: Identifiers, plan: Plan) -> None:
    """Values from the identifiers service are added when the instance lacks
    them: the service decided the output must carry them."""
    skip = recipe_tags(plan)
    for tag, value in _extra(ids):
        if tag not in header.body and tag not in skip:
            vr = dictionary_VR(tag)
            if vr not in STRING_VRS:
                raise ProfileError("an identifiers value for an attribute that is not text")
            header.body[tag] = (vr, text_bytes(vr, [value], header.codec))


def _extra(ids: Identifiers) -> list[tuple[int, str]]:
    out = []
    for keyword, value in ids.extra.items():
        tag = tag_for_keyword(keyword)
        if tag is None:
            raise ValueError(f"identifiers carry an unknown attribute keyword {keyword!r}")
        out.append((tag, value))
    return out


def _rebuild_meta(header: Header, run: Run) -> None:
    """Keep what describes the encoding; replace what names the instance or
    the sending software; drop the rest (source AE titles, private info)."""
    meta = header.meta
    assert meta is not None
    for tag in list(meta):
        if tag not in META_KEEP and tag != MEDIA_SOP_INSTANCE_UID:
            del meta[tag]
            run.removed.add(tag)
        elif meta[tag][0] != implicit_vr(tag):  # kept, under the dictionary's VR
            meta[tag] = (implicit_vr(tag), meta[tag][1])
    sop = header.body.get(SOP_INSTANCE_UID)
    if sop is not None:
        new = text_values(sop, header.codec)[:1] if isinstance(sop[1], bytes) else []
        meta[MEDIA_SOP_INSTANCE_UID] = ("UI", text_bytes("UI", new))
        run.replaced.add(MEDIA_SOP_INSTANCE_UID)
    elif MEDIA_SOP_INSTANCE_UID in meta and not run.plan.retains_uids:
        original = text_values(meta[MEDIA_SOP_INSTANCE_UID], DEFAULT)
        run.originals.add("UI", original)
        new = [run.new_uid(v) for v in original]
        meta[MEDIA_SOP_INSTANCE_UID] = ("UI", text_bytes("UI", new))
        run.replaced.add(MEDIA_SOP_INSTANCE_UID)
    meta[0x00020012] = ("UI", text_bytes("UI", [IMPLEMENTATION_CLASS_UID]))
    meta[0x00020013] = ("SH", text_bytes("SH", [IMPLEMENTATION_VERSION]))


def identifying_values(ds: Header | Dataset, config: DeidConfig | None = None
                       ) -> IdentifyingValues:
    """The original identifying values of one instance, as the leak guard
    needs them. With `config`, what the configuration keeps on purpose is
    not counted. Does not modify `ds`. (deidentify() collects the same set
    on its way, in `result.originals`: this is the independent check.)"""
    header = header_from_dataset(ds) if isinstance(ds, Dataset) else ds
    plan = plan_for(config or DeidConfig())
    out = IdentifyingValues()
    _collect(header.body, header.codec, plan, out)
    meta = header.meta or {}
    if MEDIA_SOP_INSTANCE_UID in meta and not plan.retains_uids:
        out.add("UI", text_values(meta[MEDIA_SOP_INSTANCE_UID], DEFAULT))
    return out


def _collect(item: Item, outer: Charset, plan: Plan, out: IdentifyingValues) -> None:
    codec = charset_in(item, outer)
    for tag, (vr, value) in item.items():
        if type(value) is list:
            for sub in value:
                _collect(sub, codec, plan, out)
        elif vr in STRING_VRS and (tag in plan.identifying
                                   or (vr == "UI" and plan.step(tag) is not None)):
            out.add(vr, text_values((vr, value), codec))
