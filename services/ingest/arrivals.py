"""Several SCP processes behind one address, one series: closed once, de-identified once.

A modality's associations are balanced over the SCP's replicas, so each replica may
gather a part of one series in a staged delivery of its own. Left alone, each would
close its part once the part went quiet there, and each part would be de-identified
and sent on its own. Instead every replica records its open parts in the database
(``StagedDelivery``: the series, when its last instance arrived, a heartbeat each
round), and

- closes a part only once the series has been quiet for the stable age at every
  replica still holding a part of it (a replica whose heartbeat stopped has died: its
  part is handed over when it starts again, as a later delivery);
- ingest, taking a part in, starts de-identification only when no other part of the
  series is still open at a live replica or handed over and not yet taken in: the
  last part in starts it, once, for the whole series.

Times are the replicas' own clocks (kept by NTP); the stable age is tens of seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select, update

from relay_shared.db import session_scope
from relay_shared.models import StagedDelivery, as_utc, utcnow

# A replica notes its parts every second or so: silent this long, it has stopped.
HEARTBEAT_TIMEOUT = timedelta(seconds=30)
# A handed-over part is taken in within seconds; one left longer was lost on the way
# (and the sweep's requeue of stuck series starts the series without it).
HANDED_OVER_TIMEOUT = timedelta(minutes=10)
FORGET_AFTER = timedelta(days=1)

UidOf = Callable[[str], str]


@dataclass(frozen=True)
class OpenPart:
    delivery: str  # the staged folder's name
    series_uid: str  # as received; recorded de-identified
    arrived: bool  # an instance arrived since the last round


class Arrivals:
    """One SCP process's view of the parts open at every replica."""

    def __init__(self, engine: Engine, uid_of: UidOf, stable_age: float) -> None:
        self._engine = engine
        self._uid_of = uid_of
        self._stable_age = timedelta(seconds=stable_age)

    @property
    def engine(self) -> Engine:
        return self._engine

    def note(self, parts: Iterable[OpenPart]) -> None:
        """This replica still holds these parts; those with new arrivals, since now."""
        now = utcnow()
        parts = list(parts)
        if not parts:
            return  # nothing open here: no write each round while idle
        with session_scope(self._engine) as session:
            rows = {row.delivery: row for row in session.exec(select(StagedDelivery).where(
                col(StagedDelivery.delivery).in_([p.delivery for p in parts])))}
            for part in parts:
                row = rows.get(part.delivery)
                if row is None:
                    row = StagedDelivery(delivery=part.delivery,
                                         series_uid=self._uid_of(part.series_uid))
                elif part.arrived:
                    row.last_arrival = now
                row.heartbeat_at = now
                session.add(row)
            session.execute(delete(StagedDelivery).where(
                func.coalesce(StagedDelivery.handed_over_at, StagedDelivery.heartbeat_at)
                < now - FORGET_AFTER))

    def quiet(self, series_uids: Iterable[str]) -> set[str]:
        """Those of these series (as received) that no live replica has received an
        instance of within the stable age."""
        by_key = {self._uid_of(uid): uid for uid in series_uids}
        if not by_key:
            return set()
        now = utcnow()
        with Session(self._engine) as session:
            latest = dict(session.exec(  # type: ignore[call-overload]
                select(StagedDelivery.series_uid, func.max(StagedDelivery.last_arrival))
                .where(col(StagedDelivery.series_uid).in_(list(by_key)),
                       col(StagedDelivery.handed_over_at).is_(None),
                       col(StagedDelivery.heartbeat_at) > now - HEARTBEAT_TIMEOUT)
                .group_by(col(StagedDelivery.series_uid))).all())
        return {uid for key, uid in by_key.items()
                if key not in latest or as_utc(latest[key]) <= now - self._stable_age}

    def handed_over(self, delivery: str) -> None:
        with session_scope(self._engine) as session:
            session.execute(update(StagedDelivery).where(
                col(StagedDelivery.delivery) == delivery).values(handed_over_at=utcnow()))


def taken_in(session: Session, series_uid: str, delivery: str | None) -> bool:
    """Ingest took this delivery of the series (its part, if it was one): True when no
    other part of the series is still to come, so de-identification may start."""
    if delivery is not None:
        session.execute(delete(StagedDelivery).where(
            col(StagedDelivery.delivery) == delivery))
    now = utcnow()
    pending = session.exec(select(func.count()).select_from(StagedDelivery).where(
        StagedDelivery.series_uid == series_uid,
        or_(col(StagedDelivery.handed_over_at) > now - HANDED_OVER_TIMEOUT,
            (col(StagedDelivery.handed_over_at).is_(None))
            & (col(StagedDelivery.heartbeat_at) > now - HEARTBEAT_TIMEOUT)))).one()
    return pending == 0
