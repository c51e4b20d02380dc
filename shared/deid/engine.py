"""deidentify(): a dataset and a replacement identity in, a de-identified
dataset and an audit record out. Pure: no I/O, no clock, no randomness."""

from __future__ import annotations

from dataclasses import dataclass, field
from io import BytesIO

from pydicom import dcmread
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID

from .config import DeidConfig
from .handlers import Run
from .header import TEXTUAL_VRS, Header, Unsupported, header_from_dataset, text_bytes, text_values
from .identifiers import Identifiers, Pseudonymizer
from .originals import IdentifyingValues
from .plan import UNSET, Plan, plan_for
from .provenance import add_provenance, audit_record, method_codes, raw_provenance
from .rawengine import RawRun, translate

# The implementation that wrote the file, not the one that made the image:
# the original ImplementationClassUID names the hospital's software.
IMPLEMENTATION_CLASS_UID = "2.25.203119865915658395283935473520183512065"
IMPLEMENTATION_VERSION = "DICOMRELAY_1"
SOP_INSTANCE_UID = 0x00080018
MEDIA_SOP_INSTANCE_UID = 0x00020003
META_KEEP = frozenset({0x00020001, 0x00020002, 0x00020010})


@dataclass
class DeidResult:
    dataset: Dataset | Header  # the same kind as was given
    audit: dict
    # The originals met while de-identifying this instance (less those already
    # in `known`): the same set identifying_values() returns, so the caller
    # need not walk twice.
    originals: IdentifyingValues = field(default_factory=IdentifyingValues)


def deidentify(
    ds: Dataset | Header,
    ids: Identifiers,
    pseudonymizer: Pseudonymizer,
    config: DeidConfig,
    *,
    known: IdentifyingValues | None = None,
) -> DeidResult:
    """De-identify a header: a `Header` (see `streamcopy.read_header`, the
    fast path) or a pydicom Dataset. The result holds the same kind; use
    `result.dataset`, since `ds` itself may have been changed. PixelData, if
    present, is left untouched.

    `known`: originals already met in other instances of the series; free
    text is scrubbed of them too. `result.originals` holds what this
    instance adds to them (all of its originals when `known` is None), so
    that `known.update(result.originals)` is the series' set and a caller
    keeping every result does not keep a copy of `known` per instance.

    Both kinds go through the raw engine (`rawengine.py`) when the header is
    within what it handles, else through the Dataset engine (`handlers.py`);
    the two apply the same plan.
    """
    if isinstance(ds, Header):
        source = ds.data or ds.encode()
        try:
            result = deidentify_header(ds, ids, pseudonymizer, config, known=known)
        except Unsupported:  # `ds` is half done: start again from its bytes
            dataset = dcmread(BytesIO(source), stop_before_pixels=True)
            return deidentify_dataset(dataset, ids, pseudonymizer, config, known=known)
        ds.data = b""  # the original bytes do not travel with the output
        return result
    try:
        result = deidentify_header(header_from_dataset(ds), ids, pseudonymizer, config,
                                   known=known)
    except Unsupported:
        return deidentify_dataset(ds, ids, pseudonymizer, config, known=known)
    assert isinstance(result.dataset, Header)
    result.dataset = result.dataset.to_dataset()
    return result


def deidentify_header(header: Header, ids: Identifiers, pseudonymizer: Pseudonymizer,
                      config: DeidConfig, *, known: IdentifyingValues | None = None
                      ) -> DeidResult:
    """The raw engine, IN PLACE on `header`; raises `Unsupported` (with the
    header half done) for what only pydicom can handle."""
    plan = plan_for(config)
    run = RawRun(plan, ids, pseudonymizer, header, known)
    if ids.extra:
        extra = {tag: translate(hd) for tag, hd in _extra_handlers(ids, plan).items()}
        run.actions = {**run.actions, **extra}
    run.walk(header.body)
    run.scrub_deferred()
    _add_extra_raw(header, ids, plan)
    header.body.update(raw_provenance(config, header.encoding.implicit,
                                      header.encoding.little))
    codes = method_codes(config)
    if header.meta is not None:
        _rebuild_raw_meta(header, run)
    audit = audit_record(run, config, ids, codes)
    return DeidResult(dataset=header, audit=audit, originals=run.originals)


def deidentify_dataset(ds: Dataset, ids: Identifiers, pseudonymizer: Pseudonymizer,
                       config: DeidConfig, *, known: IdentifyingValues | None = None
                       ) -> DeidResult:
    """The Dataset engine, IN PLACE on `ds`: for headers the raw engine
    does not handle (character sets with code extensions, UN elements...)."""
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


def _add_extra_raw(header: Header, ids: Identifiers, plan: Plan) -> None:
    recipe_tags = {r.tag for r in plan.config.recipe.rules} if plan.config.recipe else set()
    for keyword, value in ids.extra.items():
        tag = _keyword_tag(keyword)
        if tag not in header.body and tag not in recipe_tags:
            vr = dictionary_VR(tag)
            if vr not in TEXTUAL_VRS:
                raise Unsupported("an identifiers value for an attribute that is not text")
            header.body[tag] = (vr, text_bytes(vr, [value], header.codec))


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
        meta.MediaStorageSOPInstanceUID = UID(run.values(ds, SOP_INSTANCE_UID)[1][0])
        run.replaced.add(0x00020003)
    elif "MediaStorageSOPInstanceUID" in meta and not run.plan.retains_uids:
        original = meta.MediaStorageSOPInstanceUID
        run.originals.add("UI", original)
        meta.MediaStorageSOPInstanceUID = UID(run.new_uid(original))
        run.replaced.add(0x00020003)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION


def _rebuild_raw_meta(header: Header, run: RawRun) -> None:
    """`_rebuild_file_meta` on a Header."""
    meta = header.meta
    assert meta is not None
    for tag in list(meta):
        if tag not in META_KEEP and tag != MEDIA_SOP_INSTANCE_UID:
            del meta[tag]
            run.removed.add(tag)
    sop = header.body.get(SOP_INSTANCE_UID)
    if sop is not None:
        new = text_values(sop, header.codec)[:1] if isinstance(sop[1], bytes) else []
        meta[MEDIA_SOP_INSTANCE_UID] = ("UI", text_bytes("UI", new, "ascii"))
        run.replaced.add(MEDIA_SOP_INSTANCE_UID)
    elif MEDIA_SOP_INSTANCE_UID in meta and not run.plan.retains_uids:
        original = text_values(meta[MEDIA_SOP_INSTANCE_UID], "latin-1")
        run.originals.add("UI", original)
        new = [run.new_uid(v) for v in original]
        meta[MEDIA_SOP_INSTANCE_UID] = ("UI", text_bytes("UI", new, "ascii"))
        run.replaced.add(MEDIA_SOP_INSTANCE_UID)
    meta[0x00020012] = ("UI", text_bytes("UI", [IMPLEMENTATION_CLASS_UID], "ascii"))
    meta[0x00020013] = ("SH", text_bytes("SH", [IMPLEMENTATION_VERSION], "ascii"))


def identifying_values(ds: Dataset | Header, config: DeidConfig | None = None
                       ) -> IdentifyingValues:
    """The original identifying values of one instance, as the leak guard
    needs them. With `config`, what the configuration keeps on purpose is
    not counted. Does not modify `ds`. (deidentify() collects the same set
    on its way, in `result.originals`: this is the independent check.)"""
    if isinstance(ds, Header):
        ds = ds.to_dataset()
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
