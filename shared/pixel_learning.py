"""Region rules learned from the text gate, the database side: proposals written to the
database as the gate makes them, and the rules an admin accepted read back and added
to every project's pixel rules, looked up again at most every
RELAY_PIXEL_LEARNED_REFRESH seconds, so an accepted rule applies to the next series.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from relay_shared.db import session_scope
from relay_shared.models import PixelRuleProposal, ProposalState, utcnow
from relay_shared.pixels import PixelPolicy, PixelRulesError
from relay_shared.pixels.learned import LearnedRule, Proposal, join_boxes, rules_text
from relay_shared.pixels.rules import extended

log = logging.getLogger(__name__)
ORIGIN = "learned rules (database)"


def record_proposals(engine: Engine, found: Iterable[tuple[int, Proposal]]) -> None:
    """Each (image id, proposal) joined into its device's open proposal, or a new one.
    A device an admin already decided on is not proposed again."""
    for image_id, proposal in found:
        try:
            with session_scope(engine) as session:
                _record(session, image_id, proposal)
        except IntegrityError:  # another worker proposed the same device just now
            with session_scope(engine) as session:
                _record(session, image_id, proposal)


def _record(session: Session, image_id: int, proposal: Proposal) -> None:
    row = session.exec(select(PixelRuleProposal).where(
        PixelRuleProposal.manufacturer == proposal.manufacturer,
        PixelRuleProposal.model == proposal.model, PixelRuleProposal.rows == proposal.rows,
        PixelRuleProposal.columns == proposal.columns)).first()
    if row is None:
        row = PixelRuleProposal(manufacturer=proposal.manufacturer, model=proposal.model,
                                rows=proposal.rows, columns=proposal.columns, boxes=[])
    elif row.state != ProposalState.PROPOSED:
        return
    row.boxes = [list(b) for b in join_boxes([*row.boxes, *proposal.boxes], proposal.rows,
                                            proposal.columns, pad=0)]
    row.images_seen += 1
    row.last_image_id, row.updated_at = image_id, utcnow()
    session.add(row)


def accepted_rules(session: Session) -> list[LearnedRule]:
    rows = session.exec(select(PixelRuleProposal)
                        .where(PixelRuleProposal.state == ProposalState.ACCEPTED)
                        .order_by(col(PixelRuleProposal.id)))
    return [LearnedRule(r.id or 0, r.manufacturer, r.model, r.rows, r.columns,
                        tuple(tuple(b) for b in r.boxes), r.covers_text)  # type: ignore[misc]
            for r in rows]


@dataclass
class LearnedRules:
    engine: Engine
    refresh_seconds: float
    _version: tuple[int, object] | None = None
    _text: str | None = None
    _checked: float = float("-inf")
    _extended: dict[int, tuple[str | None, PixelPolicy]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def extend(self, policy: PixelPolicy) -> PixelPolicy:
        """`policy` with the accepted rules added to its own."""
        with self._lock:
            self._refresh()
            if self._text is None:
                return policy
            cached = self._extended.get(id(policy))
            if cached is None or cached[0] != self._text:
                try:
                    rules = extended(policy.rules, self._text, ORIGIN)
                except PixelRulesError:  # a rule that clashes: the gate still holds
                    # Not the loader's words: they can quote a rule's text.
                    log.error("learned pixel rules not applied: they do not load beside "
                              "the rules in force")
                    return policy
                cached = (self._text, replace(policy, rules=rules))
                self._extended[id(policy)] = cached
            return cached[1]

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.refresh_seconds:
            return
        self._checked = now
        with Session(self.engine) as session:
            version = tuple(session.exec(
                select(func.count(), func.max(PixelRuleProposal.updated_at))
                .where(PixelRuleProposal.state == ProposalState.ACCEPTED)).one())
            if version == self._version:
                return
            rules = accepted_rules(session)
        self._version = version  # type: ignore[assignment]
        self._text = rules_text(rules, f"learned-{len(rules)}") if rules else None
        log.info("learned pixel rules loaded", extra={"rules": len(rules)})
