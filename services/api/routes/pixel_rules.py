"""Region rules learned from the text gate: an admin accepts, edits or refuses what the
gate proposed, and exports the accepted ones as a rules file another site can load.

Deid reads the accepted rules from the database (refreshing every
RELAY_PIXEL_LEARNED_REFRESH seconds), so an accepted rule applies to the next series.
Each decision is an audited event with the admin's token name.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from relay_api.audit import audit
from relay_api.deps import Admin, Caller, Id, SessionDep
from relay_shared.models import PixelRuleProposal, ProposalState, utcnow
from relay_shared.pixel_learning import ORIGIN, accepted_rules
from relay_shared.pixels import PixelRulesError, load_rules
from relay_shared.pixels.learned import MAX_BOXES, rules_text
from relay_shared.pixels.rules import extended

router = APIRouter(prefix="/api/v1/pixel-rules", tags=["pixel rules"])
Box = Annotated[list[int], Field(min_length=4, max_length=4,
                                 description="[x, y, width, height] in pixels")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such proposal"}, 409: {"description": "It was refused"}}
WITH_BODY: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND, 400: {"description": "The body is not JSON (not even UTF-8)"}}


class RuleOut(BaseModel):
    id: int
    manufacturer: str
    model: str
    rows: int
    columns: int
    boxes: list[list[int]]
    covers_text: bool
    state: ProposalState
    images_seen: int = Field(description="Held images whose text went into the boxes")
    last_image_id: int | None
    decided_by: str | None


class RuleEdit(BaseModel):
    boxes: list[Box] | None = Field(None, min_length=1, max_length=MAX_BOXES)
    covers_text: bool | None = Field(None, description="The boxes hold all the text this "
                                     "device burns in (BurnedInAnnotation becomes NO)")


@router.get("", response_model=list[RuleOut])
def list_rules(session: SessionDep, _: Admin,
               state: Annotated[ProposalState | None, Query()] = None) -> list[RuleOut]:
    query = select(PixelRuleProposal)
    if state is not None:
        query = query.where(PixelRuleProposal.state == state)
    rows = session.exec(query.order_by(col(PixelRuleProposal.id).desc()).limit(500))
    return [RuleOut.model_validate(r, from_attributes=True) for r in rows]


@router.get("/export", response_class=Response,
            responses={200: {"content": {"application/yaml": {}}}})
def export(session: SessionDep, caller: Admin) -> Response:
    """The accepted rules as a rules file (the format of RELAY_PIXEL_RULES)."""
    rules = accepted_rules(session)
    text = rules_text(rules, f"learned-{utcnow():%Y%m%d}")
    audit(session, caller, "pixel_rules", f"exported {len(rules)} learned rule(s)")
    session.commit()
    return Response(text, media_type="application/yaml", headers={
        "Content-Disposition": 'attachment; filename="learned-pixel-rules.yaml"'})


@router.put("/{rule_id}", response_model=RuleOut, responses=WITH_BODY)
def edit(rule_id: Id, body: RuleEdit, session: SessionDep, caller: Admin) -> RuleOut:
    row = _decidable(session, rule_id)
    _apply(row, body)
    return _commit(session, row, caller, "edited")


@router.post("/{rule_id}/accept", response_model=RuleOut, responses=WITH_BODY)
def accept(rule_id: Id, session: SessionDep, caller: Admin,
           body: RuleEdit | None = None) -> RuleOut:
    row = _decidable(session, rule_id)
    if body is not None:
        _apply(row, body)
    row.state = ProposalState.ACCEPTED
    return _commit(session, row, caller, "accepted")


@router.post("/{rule_id}/refuse", response_model=RuleOut, responses=NOT_FOUND)
def refuse(rule_id: Id, session: SessionDep, caller: Admin) -> RuleOut:
    row = _decidable(session, rule_id)
    row.state = ProposalState.REFUSED
    return _commit(session, row, caller, "refused")


def _decidable(session: Session, rule_id: int) -> PixelRuleProposal:
    row = session.get(PixelRuleProposal, rule_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"pixel rule {rule_id} does not exist")
    if row.state == ProposalState.REFUSED:
        raise HTTPException(status.HTTP_409_CONFLICT, f"pixel rule {rule_id} was refused")
    return row


def _apply(row: PixelRuleProposal, body: RuleEdit) -> None:
    if body.boxes is not None:
        for box in body.boxes:
            x, y, width, height = box
            if x < 0 or y < 0 or width <= 0 or height <= 0 or x + width > row.columns \
                    or y + height > row.rows:
                raise HTTPException(
                    422,
                    f"box {box} must lie within the {row.columns}x{row.rows} image and have "
                    "a positive width and height")
        row.boxes = [list(b) for b in body.boxes]
    if body.covers_text is not None:
        row.covers_text = body.covers_text


def _commit(session: Session, row: PixelRuleProposal, caller: Caller, what: str) -> RuleOut:
    row.decided_by, row.decided_at = caller.token.label, utcnow()
    row.updated_at = row.decided_at
    session.add(row)
    session.flush()
    try:  # the rules deid will load must load: a clash is refused here, not there
        extended(load_rules(), rules_text(accepted_rules(session), "check"), ORIGIN)
    except PixelRulesError:
        # The loader's words can quote a rule's text (a device's make and model): a
        # fixed phrase and the rule's id instead.
        session.rollback()
        raise HTTPException(422, f"rule {row.id}: the accepted rules would not load beside "
                                 "the rules in force (a name used twice, or a box or "
                                 "condition the loader refuses)") from None
    audit(session, caller, "pixel_rule", f"learned pixel rule {row.id} {what}")
    session.commit()
    return RuleOut.model_validate(row, from_attributes=True)
