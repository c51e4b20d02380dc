"""Series made to wait for review the way the relay does it: ingested and de-identified
by the real handlers on the api's own database and work store."""

from __future__ import annotations

import shutil
from pathlib import Path

from relay_deid.handlers import DeidContext, deidentify_series
from relay_ingest.handlers import claim, ingest_claimed
from relay_shared.deid import DeidConfig
from relay_shared.review import ReviewChoice, ReviewMode
from relay_shared.runtime import Runtime
from tests.support.dicom_factory import Patient, SeriesSpec, write_series

ADA = Patient("MRN-1001", "Lovelace^Ada", accession="ACC-7001")
GRACE = Patient("MRN-3003", "Hopper^Grace", accession="ACC-7003")


def review_context(rt: Runtime, mode: ReviewMode = ReviewMode.ALL) -> DeidContext:
    return DeidContext(rt.engine, rt.store, rt.pseudonymizer,
                       DeidConfig.from_settings(["rtnLongModifDatesOpt"], None),
                       rt.settings.send_queue, rt.vault, review=ReviewChoice(mode))


def series_under_review(rt: Runtime, root: Path, spec: SeriesSpec,
                        mode: ReviewMode = ReviewMode.ALL) -> int:
    source = root / f"src-{spec.series_uid}"
    write_series(spec, source)
    incoming = root / "incoming" / source.name
    shutil.copytree(source, incoming)
    (series_id,) = ingest_claimed(claim(incoming, rt.store), rt.engine, rt.store,
                                  rt.pseudonymizer.uid, rt.settings.deid_queue)
    deidentify_series(review_context(rt, mode), series_id)
    return series_id


def ct_series(patient: Patient = ADA, instances: int = 3) -> SeriesSpec:
    return SeriesSpec(patient, instances=instances, rows=48, columns=40)
