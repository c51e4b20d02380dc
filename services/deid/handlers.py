"""What deid does with one series: pseudonyms, the profile on every image, the leak guard.

Idempotent: a series that is past this stage is skipped, and an image already
de-identified is not done again.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field, replace

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select, update

from relay_deid.guarding import guard_series
from relay_deid.identifiers import IdentifiersSource, LocalIdentifiers
from relay_shared import series_lock, series_state
from relay_shared.db import record_event, session_scope
from relay_shared.deid import (
    DeidConfig,
    Header,
    Identifiers,
    IdentifyingValues,
    Pseudonymizer,
    deidentify,
    find_leaks,
    merge_audits,
)
from relay_shared.deid.streamcopy import load_header, write_deidentified
from relay_shared.dicom.header import MAX_INFLATED_BYTES
from relay_shared.guard import Rules as GuardRules
from relay_shared.metrics import INSTANCES_DEIDENTIFIED, INSTANCES_FAILED
from relay_shared.models import (
    Image,
    ReviewOriginal,
    Series,
    SeriesIdentifiers,
    Status,
    Study,
    utcnow,
)
from relay_shared.outbox import enqueue
from relay_shared.paths import WorkStore
from relay_shared.pixel_learning import LearnedRules, record_proposals
from relay_shared.pixels import PixelOutcome, PixelPolicy, counts, record
from relay_shared.reasons import RelayError, described
from relay_shared.review import ReviewChoice
from relay_shared.review_attributes import changed_values
from relay_shared.vault import IdentifierVault

log = logging.getLogger(__name__)
SERVICE = "deid"
# Ids bound in one IN list: well under SQLite's limit of bound parameters.
IDS_PER_STATEMENT = 500


class SeriesHeld(RelayError):
    """The series cannot be de-identified as it stands; retrying will not help."""


@dataclass(frozen=True)
class DeidContext:
    engine: Engine
    store: WorkStore
    pseudonymizer: Pseudonymizer
    config: DeidConfig
    send_queue: str
    vault: IdentifierVault | None = None
    identifiers: IdentifiersSource | None = None
    pixels: PixelPolicy = field(default_factory=PixelPolicy)
    guard_rules: GuardRules | None = None  # None: the built-in rules
    review: ReviewChoice = field(default_factory=ReviewChoice)
    learned: LearnedRules | None = None  # region rules accepted from the gate's proposals
    # RELAY_MAX_INFLATED_BYTES: a deflated original inflates here as it did at ingest.
    max_inflated_bytes: int = MAX_INFLATED_BYTES

    def source(self) -> IdentifiersSource:
        return self.identifiers or LocalIdentifiers(self.pseudonymizer)


def deidentify_series(ctx: DeidContext, series_id: int) -> None:
    if ctx.learned is not None:
        ctx = replace(ctx, pixels=ctx.learned.extend(ctx.pixels))
    # A second worker given the same series waits here, then finds it done.
    with series_lock.exclusive(ctx.engine, series_id):
        _deidentify_series(ctx, series_id)


def _deidentify_series(ctx: DeidContext, series_id: int) -> None:
    with session_scope(ctx.engine) as session:
        series = session.get(Series, series_id)
        if series is None or series.status not in (Status.NEW, Status.PROCESSING):
            return  # a redelivery of work already done
        pending = _pending_images(session, series_id)
        series_state.started(session, series, f"{len(pending)} image(s)")
        reviewed = ctx.review.selects(series.series_uid or str(series_id),
                                      ctx.pseudonymizer.text)
    try:
        ids, origin, originals, results = _deidentify_all(
            ctx, series_id, pending, keep_before=reviewed and ctx.vault is not None)
    except SeriesHeld as exc:
        _hold(ctx, series_id, str(exc))
        return
    leaks = _leak_check(ctx, series_id, originals, results, ids.date_shift_days)
    verdict = guard_series(ctx.store, series_id, results, ctx.config.options,
                           ids.date_shift_days, ctx.guard_rules)
    leaks += verdict.leaks
    if leaks:
        _quarantine_leaking(ctx, series_id, pending, leaks)
        return
    if not _fail_unread(ctx, series_id, results, verdict.unread):
        _hold(ctx, series_id, "the guard could read no image of this series")
        return
    _finish(ctx, series_id, ids, origin, results, reviewed)
    record_proposals(ctx.engine, [(r.image_id, r.pixels.proposal) for r in results
                                  if r.pixels is not None and r.pixels.proposal is not None])


def _pending_images(session: Session, series_id: int) -> list[Image]:
    query = select(Image).where(Image.series_id == series_id,
                                Image.status.in_([Status.NEW, Status.PROCESSING]))  # type: ignore[attr-defined]
    return list(session.exec(query.order_by(Image.id)))  # type: ignore[arg-type]


@dataclass
class ImageResult:
    image_id: int
    ok: bool
    reason: str | None = None
    audit: dict | None = None
    originals: IdentifyingValues | None = None
    pixels: PixelOutcome | None = None  # set for images whose pixels may hold text
    before: dict[str, str] | None = None  # what the profile changed, for an admin's review


@dataclass
class Origin:
    """Where the series' identity came from: the originals (sealed before storing)
    and, from an identifiers service, the hash of its answer."""

    identity: dict[str, str] = field(default_factory=dict)
    source: str = "local"
    response_sha256: str | None = None


IDENTITY_KEYWORDS = ("PatientID", "PatientName", "PatientBirthDate", "AccessionNumber",
                     "StudyInstanceUID", "SeriesInstanceUID")


def _deidentify_all(ctx: DeidContext, series_id: int, images: list[Image],
                    keep_before: bool = False
                    ) -> tuple[Identifiers, Origin, IdentifyingValues, list[ImageResult]]:
    """One header read per image: identifiers, the original identity for the admin's
    mapping, the originals for the leak guard, the outputs."""
    ids: Identifiers | None = None
    origin = Origin()
    first_patient: str | None = None
    originals: IdentifyingValues | None = None
    results: list[ImageResult] = []
    for image in images:
        assert image.id is not None
        source = ctx.store.original(series_id, image.id)
        try:
            header = load_header(source, ctx.max_inflated_bytes)
        except Exception as exc:  # the file vanished or went bad after ingest checked it
            results.append(ImageResult(image.id, False, _reason("unreadable original", exc)))
            continue
        patient = str(header.get("PatientID", "")).strip()
        if ids is None:
            first_patient = patient
            origin.identity = {k: str(header.get(k, "")) for k in IDENTITY_KEYWORDS}
            ids, origin.response_sha256 = ctx.source().identifiers_for(
                patient, str(header.get("PatientName", "")))
            origin.source = ctx.source().source
        elif patient != first_patient:
            raise SeriesHeld("the images of this series disagree on PatientID: held for a "
                             "person to resolve")
        # The profile changes the header in place: what it was is taken first.
        original = header.to_dataset() if keep_before else None
        result = _deidentify_image(ctx, series_id, image.id, header, ids, originals)
        if original is not None and result.ok and result.audit is not None:
            result.before = changed_values(original, result.audit)
        results.append(result)
        if result.originals is not None:
            if originals is None:
                originals = result.originals
            else:
                originals.update(result.originals)
    if ids is None or originals is None:
        raise SeriesHeld("no image of this series could be read and de-identified")
    return ids, origin, originals, results


def _reason(what: str, exc: BaseException) -> str:
    """The relay's own fixed words for what is wrong with a file (a
    `RelayError`: a refused structure, a value the profile cannot write),
    else the exception's type; never a library's text, which can quote a value."""
    return described(what, exc)


def _deidentify_image(ctx: DeidContext, series_id: int, image_id: int,
                      header: Header,
                      ids: Identifiers, known: IdentifyingValues | None) -> ImageResult:
    source = ctx.store.original(series_id, image_id)
    target = ctx.store.deidentified(series_id, image_id)
    pixels = None
    try:
        assessment = ctx.pixels.assess(header)  # before the profile removes the device
        # `known` lets free text be scrubbed of values seen in earlier images too.
        result = deidentify(header, ids, ctx.pseudonymizer, ctx.config, known=known)
        target.parent.mkdir(parents=True, exist_ok=True)
        if assessment.flagged:
            pixels = ctx.pixels.process(assessment, source, target, result.dataset,
                                        [known, result.originals], ctx.pseudonymizer)
        else:
            write_deidentified(source, target, result.dataset)
    except OSError as exc:
        # Disk full, an I/O error: the machine's fault, not the image's; retry the series.
        # Libraries also raise OSError for a file they cannot make sense of (PIL, gzip),
        # without an errno: that is the image's fault, and retrying cannot mend it.
        if exc.errno is not None:
            raise
        return _image_failed(series_id, image_id, exc)
    except Exception as exc:  # one bad image must not stop the series; its reason is kept
        return _image_failed(series_id, image_id, exc)
    return ImageResult(image_id, True, audit=result.audit, originals=result.originals,
                       pixels=pixels)


def _image_failed(series_id: int, image_id: int, exc: Exception) -> ImageResult:
    log.warning("image failed", extra={"series_id": series_id, "image_id": image_id,
                                      "error_type": type(exc).__name__})
    return ImageResult(image_id, False, _reason("de-identification failed", exc))


def _leak_check(ctx: DeidContext, series_id: int, originals: IdentifyingValues,
                results: list[ImageResult], date_shift_days: int) -> list[str]:
    """Read back every written output and search it for any original value of the series."""
    hits: list[str] = []
    for result in results:
        if not result.ok:
            continue
        output = load_header(ctx.store.deidentified(series_id, result.image_id),
                             ctx.max_inflated_bytes)
        hits.extend(f"image {result.image_id}: {path}" for path in find_leaks(
            output, originals, date_shift_days=date_shift_days, config=ctx.config))
    return hits


def _fail_unread(ctx: DeidContext, series_id: int, results: list[ImageResult],
                 unread: dict[int, str]) -> bool:
    """An image whose original or output the guard cannot read fails with the
    guard's reason, its output set aside with the quarantine; whether any image
    is left to send."""
    for result in results:
        if result.ok and result.image_id in unread:
            result.ok, result.reason = False, unread[result.image_id]
            _set_aside_output(ctx, series_id, result.image_id)
    return any(result.ok for result in results)


def _set_aside_output(ctx: DeidContext, series_id: int, image_id: int) -> str | None:
    """An image's de-identified file moved to the series' quarantine, never sent; where
    it now is, if it was written."""
    output = ctx.store.deidentified(series_id, image_id)
    if not output.exists():
        return None
    quarantine = ctx.store.quarantine_for(series_id) / "deidentified"
    quarantine.mkdir(parents=True, exist_ok=True)
    return str(shutil.move(output, quarantine / output.name))


def _hold(ctx: DeidContext, series_id: int, reason: str) -> None:
    with session_scope(ctx.engine) as session:
        series = session.get(Series, series_id)
        assert series is not None
        series_state.held(session, series, reason)
    log.warning("series held", extra={"series_id": series_id})


def _quarantine_leaking(ctx: DeidContext, series_id: int, images: list[Image],
                        leaks: list[str]) -> None:
    with session_scope(ctx.engine) as session:
        for image in images:
            assert image.id is not None
            row = session.get(Image, image.id)
            assert row is not None
            moved = _set_aside_output(ctx, series_id, image.id)
            if moved is not None:
                row.quarantine_path = moved
            series_state.image_to(row, Status.QUARANTINED,
                                  "the series leaked an identifying value")
        series = session.get(Series, series_id)
        assert series is not None
        reason = "leak guard: identifying values remain at " + "; ".join(leaks[:20])
        series_state.quarantined(session, series, reason)
    INSTANCES_FAILED.labels(stage="deid", reason="leak").inc(len(images))
    log.error("series quarantined by the leak guard",
              extra={"series_id": series_id, "hits": len(leaks)})


def _finish(ctx: DeidContext, series_id: int, ids: Identifiers, origin: Origin,
            results: list[ImageResult], reviewed: bool = False) -> None:
    with session_scope(ctx.engine) as session:
        series = session.get(Series, series_id)
        assert series is not None
        # What series_state.image_to sets, for the images that were simply de-identified,
        # in one statement per chunk; only those failed or with a pixel decision are
        # loaded as objects. One query per image was a third of the stage's time, and an
        # object per image still most of what was left of the stage's database time.
        plain = [r.image_id for r in results if r.ok and r.pixels is None]
        now = utcnow()
        for start in range(0, len(plain), IDS_PER_STATEMENT):
            session.execute(update(Image).where(
                col(Image.id).in_(plain[start:start + IDS_PER_STATEMENT])
            ).values(status=Status.DONEPROCESSING, reason=None, updated_at=now)
             .execution_options(synchronize_session=False))
        others = [r for r in results if not (r.ok and r.pixels is None)]
        # The rest still waiting: those failed or with a pixel decision, and any that
        # ingest recorded meanwhile (late).
        images = {image.id: image for image in session.exec(select(Image).where(
            Image.series_id == series_id,
            col(Image.status).in_([Status.NEW, Status.PROCESSING])))}
        for result in others:
            image = images.get(result.image_id) or session.get(Image, result.image_id)
            assert image is not None
            series_state.image_to(image, Status.DONEPROCESSING if result.ok else Status.FAILED,
                                  result.reason)
            if not result.ok:
                _quarantine_original(ctx, series_id, image)
            record(image, result.pixels, ctx.store)
        sealed = ctx.vault.seal(origin.identity) if ctx.vault else None
        _save_identifiers(session, series, ids, origin, sealed)
        series.audit = _series_audit(results, ids)
        series.key_id = ids.key_id
        ok = sum(r.ok for r in results)
        held = series.audit["pixels"]["held"]
        detail = (f"{ok} image(s) de-identified, {len(results) - ok} failed, {held} held "
                  "for burned-in text")
        done = {r.image_id for r in results}
        late = sum(1 for image in images.values()
                   if image.status is Status.NEW and image.id not in done)
        if late and series.status is Status.NEW:
            # Ingest recorded more of the series meanwhile and queued it again: the
            # series waits for those, then goes out whole, once (and is reviewed whole).
            record_event(session, series_id, SERVICE, "deidentified",
                         f"{detail}; {late} more arrived meanwhile, de-identified next")
        elif reviewed and ok:
            series_state.deidentified(session, series, detail)
            _seal_before(session, ctx, series_id, results)
            series_state.awaiting_review(session, series, ctx.review.describe())
        else:
            series_state.deidentified(session, series, detail)
            enqueue(session, ctx.send_queue, series)
    INSTANCES_DEIDENTIFIED.inc(ok)
    if ok < len(results):
        INSTANCES_FAILED.labels(stage="deid", reason="deid_error").inc(len(results) - ok)
    if held:
        INSTANCES_FAILED.labels(stage="deid", reason="burned_in_text").inc(held)


def _seal_before(session: Session, ctx: DeidContext, series_id: int,
                 results: list[ImageResult]) -> None:
    for result in results:
        if result.before is None or ctx.vault is None:
            continue
        key_id, sealed = ctx.vault.seal(result.before)
        row = session.exec(select(ReviewOriginal).where(
            ReviewOriginal.image_id == result.image_id)).first()
        if row is None:
            row = ReviewOriginal(series_id=series_id, image_id=result.image_id, key_id=key_id,
                                 sealed=sealed)
        row.key_id, row.sealed = key_id, sealed
        session.add(row)


def _quarantine_original(ctx: DeidContext, series_id: int, image: Image) -> None:
    assert image.id is not None
    source = ctx.store.original(series_id, image.id)
    if source.exists():
        target = ctx.store.quarantine_for(series_id) / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        image.quarantine_path = str(shutil.move(source, target))


def _save_identifiers(session: Session, series: Series, ids: Identifiers, origin: Origin,
                      sealed: tuple[str, str] | None) -> None:
    row = session.exec(select(SeriesIdentifiers).where(
        SeriesIdentifiers.series_id == series.id)).first()
    if row is None:
        row = SeriesIdentifiers(series_id=series.id, source=origin.source,  # type: ignore[arg-type]
                                key_id=ids.key_id, patient_pseudonym=ids.patient_id,
                                date_shift_days=ids.date_shift_days,
                                response_sha256=origin.response_sha256)
        session.add(row)
    if sealed is not None and row.originals_purged_at is None:
        row.original_key_id, row.original_encrypted = sealed
    study = session.get(Study, series.study_id)
    if study is not None:
        study.patient_pseudonym = ids.patient_id


def _series_audit(results: list[ImageResult], ids: Identifiers) -> dict:
    audit = merge_audits([r.audit for r in results if r.ok and r.audit])
    audit["identifiers_sha256"] = ids.digest()
    audit["pixels"] = counts(r.pixels for r in results)
    return audit
