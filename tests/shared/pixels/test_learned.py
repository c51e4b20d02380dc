"""Region rules that learn: a held image from a device no rule covers proposes a rule
around the text the gate read; accepted by an admin, it blanks that device's text in
the next series, which then passes; exported, it loads as a site's rules file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from sqlmodel import Session, select

from relay_deid.handlers import DeidContext, deidentify_series
from relay_ingest.handlers import claim, ingest_claimed
from relay_shared.db import session_scope
from relay_shared.deid import DeidConfig
from relay_shared.models import Event, Image, PixelRuleProposal, ProposalState, Status
from relay_shared.pixel_learning import LearnedRules, record_proposals
from relay_shared.pixels import PixelPolicy, load_rules
from relay_shared.pixels.assess import assess
from relay_shared.pixels.learned import LearnedRule, Proposal, exact, join_boxes, rules_text
from relay_shared.runtime import Runtime
from tests.services.api.seed import client, make_runtime
from tests.shared.pixels.drawing import UsSpec, draw_frame, us_image
from tests.shared.pixels.test_gate import IDENTIFYING, _policy, _run, tesseract  # noqa: F401

pytestmark = pytest.mark.usefixtures("tesseract")
NOVEL = {"manufacturer": "Novel Imaging [EU]", "model": "EchoStar 9*"}


def _bright(spec: UsSpec) -> np.ndarray:
    """Where the text is: speckle stays below 60, text is drawn at 255."""
    return draw_frame(spec.rows, spec.cols, spec.texts) > 128


def _covered(mask: np.ndarray, boxes: list[list[int]] | tuple) -> bool:
    inside = np.zeros_like(mask)
    for x, y, width, height in boxes:
        inside[y:y + height, x:x + width] = True
    return bool(mask[~inside].sum() == 0)


def test_boxes_are_padded_kept_in_the_frame_and_joined() -> None:
    assert join_boxes([(2, 2, 10, 10), (14, 4, 10, 10), (100, 50, 5, 5)], 60, 120) == (
        (0, 0, 28, 18), (96, 46, 13, 13))
    assert join_boxes([(110, 55, 20, 20)], 60, 120) == ((106, 51, 14, 9),)


def test_a_held_image_from_an_uncovered_device_proposes_boxes_over_its_text(
        tmp_path: Path) -> None:
    spec = UsSpec(texts=IDENTIFYING, **NOVEL)
    outcome, _ = _run(tmp_path, _policy(tmp_path), spec)
    assert outcome.gate == "held" and not outcome.redacted
    proposal = outcome.proposal
    assert proposal is not None
    assert (proposal.manufacturer, proposal.model, proposal.rows, proposal.columns) == (
        "Novel Imaging [EU]", "EchoStar 9*", 160, 320)
    assert _covered(_bright(spec), proposal.boxes)
    area = sum(w * h for _, _, w, h in proposal.boxes)
    assert area < 0.3 * 160 * 320  # around the text, not the whole frame


def test_no_proposal_where_a_rule_covers_the_device_or_nothing_is_held(tmp_path: Path) -> None:
    covered, _ = _run(tmp_path, _policy(tmp_path), UsSpec(texts=IDENTIFYING))
    assert covered.gate == "passed" and covered.proposal is None
    quiet, _ = _run(tmp_path, _policy(tmp_path), UsSpec(texts={(4, 100): "LEFT KIDNEY"},
                                                        **NOVEL))
    assert quiet.gate == "passed" and quiet.proposal is None


def test_exported_rules_load_as_a_rules_file_and_match_only_their_device(
        tmp_path: Path) -> None:
    rule = LearnedRule(7, "Novel Imaging [EU]", "EchoStar 9*", 160, 320,
                       ((0, 0, 150, 60), (0, 100, 40, 10)), True)
    path = tmp_path / "learned.yaml"
    path.write_text(rules_text([rule], "learned-1"))
    rules = load_rules(path)
    (loaded,) = [r for r in rules.regions if r.name == "learned-7"]
    assert [(b.x, b.y, b.width, b.height) for b in loaded.boxes] == [(0, 0, 150, 60),
                                                                      (0, 100, 40, 10)]
    assert loaded.covers_text is True
    assert exact("EchoStar 9*") == "EchoStar 9[*]"
    device = us_image(UsSpec(**NOVEL))
    assert loaded in assess(device, rules).rules
    # The glob characters of the make and model are taken as themselves.
    other = us_image(UsSpec(manufacturer="Novel Imaging E", model="EchoStar 9 Pro"))
    assert loaded not in assess(other, rules).rules
    smaller = us_image(UsSpec(rows=120, **NOVEL))
    assert loaded not in assess(smaller, rules).rules


def _ingest_one(rt: Runtime, root: Path, spec: UsSpec, name: str) -> int:
    folder = root / "incoming" / name
    folder.mkdir(parents=True)
    us_image(spec).save_as(folder / "IM0.dcm", enforce_file_format=True)
    (series_id,) = ingest_claimed(claim(folder, rt.store), rt.engine, rt.store,
                                  rt.pseudonymizer.uid, "relay.deid")
    return series_id


def _image_of(rt: Runtime, series_id: int) -> Image:
    with Session(rt.engine) as session:
        return session.exec(select(Image).where(Image.series_id == series_id)).one()


def test_an_accepted_proposal_blanks_the_next_series_of_the_device(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path / "var")
    ctx = DeidContext(rt.engine, rt.store, rt.pseudonymizer,
                      DeidConfig.from_settings(["rtnLongModifDatesOpt"], None), "relay.send",
                      pixels=PixelPolicy(load_rules()), learned=LearnedRules(rt.engine, 0))
    spec = UsSpec(texts=IDENTIFYING, **NOVEL)
    first = _ingest_one(rt, tmp_path, spec, "first")
    deidentify_series(ctx, first)
    assert _image_of(rt, first).pixel_gate == "held"
    admin = client(rt, "admin")
    (proposed,) = admin.get("/api/v1/pixel-rules", params={"state": "PROPOSED"}).json()
    assert (proposed["manufacturer"], proposed["model"], proposed["images_seen"]) == (
        "Novel Imaging [EU]", "EchoStar 9*", 1)
    assert _covered(_bright(spec), proposed["boxes"])
    assert client(rt, "operator").post(
        f"/api/v1/pixel-rules/{proposed['id']}/accept").status_code == 403
    outside = admin.put(f"/api/v1/pixel-rules/{proposed['id']}",
                        json={"boxes": [[300, 0, 40, 10]]})
    assert outside.status_code == 422 and "within the 320x160 image" in outside.json()["detail"]
    accepted = admin.post(f"/api/v1/pixel-rules/{proposed['id']}/accept",
                          json={"covers_text": True})
    assert accepted.status_code == 200 and accepted.json()["state"] == "ACCEPTED"

    second = _ingest_one(rt, tmp_path, UsSpec(texts=IDENTIFYING, patient_id="MRN-4711",
                                              **NOVEL), "second")
    deidentify_series(ctx, second)
    image = _image_of(rt, second)
    assert (image.status, image.pixel_redacted, image.pixel_gate) == (
        Status.DONEPROCESSING, True, "passed")
    assert f"learned-{proposed['id']}" in (image.pixel_reason or "")
    output = dcmread(rt.store.deidentified(second, image.id or 0))
    assert output.BurnedInAnnotation == "NO"
    assert output.pixel_array[_bright(spec)].max() == 0  # the text is black

    exported = admin.get("/api/v1/pixel-rules/export")
    assert exported.headers["content-type"].startswith("application/yaml")
    shared = tmp_path / "shared.yaml"
    shared.write_text(exported.text)
    names = [r.name for r in load_rules(shared).regions]
    assert f"learned-{proposed['id']}" in names
    with Session(rt.engine) as session:
        decided = session.exec(select(Event).where(Event.kind == "pixel_rule")).all()
        assert [e.detail.split(" by token")[0] for e in decided if e.detail] == [
            f"learned pixel rule {proposed['id']} accepted"]
        decided_by = session.exec(select(PixelRuleProposal)).one().decided_by
        assert (decided_by or "").startswith("unnamed-admin-")  # the token's audit name
    rt.engine.dispose()


def test_a_refused_device_is_not_proposed_again(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path / "var")
    ctx = DeidContext(rt.engine, rt.store, rt.pseudonymizer,
                      DeidConfig.from_settings(["rtnLongModifDatesOpt"], None), "relay.send",
                      learned=LearnedRules(rt.engine, 0))
    deidentify_series(ctx, _ingest_one(rt, tmp_path, UsSpec(texts=IDENTIFYING, **NOVEL), "a"))
    (proposed,) = client(rt, "admin").get("/api/v1/pixel-rules").json()
    assert client(rt, "admin").post(
        f"/api/v1/pixel-rules/{proposed['id']}/refuse").json()["state"] == "REFUSED"
    later = _ingest_one(rt, tmp_path, UsSpec(texts=IDENTIFYING, **NOVEL), "b")
    deidentify_series(ctx, later)
    assert _image_of(rt, later).pixel_gate == "held"  # still held, as without a rule
    (still,) = client(rt, "admin").get("/api/v1/pixel-rules").json()
    assert (still["state"], still["images_seen"]) == ("REFUSED", 1)
    rt.engine.dispose()



def test_proposals_of_one_device_join_and_accepted_rules_are_looked_up_on_their_schedule(
        tmp_path: Path) -> None:
    rt = make_runtime(tmp_path / "var")
    device = ("Novel Imaging [EU]", "EchoStar 9*", 160, 320)
    record_proposals(rt.engine, [(1, Proposal(*device, ((0, 0, 50, 20),))),
                                 (2, Proposal(*device, ((40, 10, 50, 20), (0, 120, 30, 10))))])
    with Session(rt.engine) as session:
        (row,) = session.exec(select(PixelRuleProposal)).all()
        assert (row.images_seen, row.last_image_id) == (2, 2)
        assert row.boxes == [[0, 0, 90, 30], [0, 120, 30, 10]]
    policy = PixelPolicy(load_rules())
    hourly, every_series = LearnedRules(rt.engine, 3600), LearnedRules(rt.engine, 0)
    assert hourly.extend(policy) is policy and every_series.extend(policy) is policy
    with session_scope(rt.engine) as session:
        accepted = session.exec(select(PixelRuleProposal)).one()
        accepted.state = ProposalState.ACCEPTED
    assert hourly.extend(policy) is policy  # not looked for again within the hour
    learned = every_series.extend(policy)
    assert [r.name for r in learned.rules.regions if r.name.startswith("learned-")] == [
        f"learned-{row.id}"]
    assert every_series.extend(policy) is learned  # built once per change
    assert not any(r.name.startswith("learned-") for r in policy.rules.regions)
    rt.engine.dispose()
