"""Worklists: read from CSV, recorded as collection rows.

The query values (accession numbers, patient ids) are identifying, so a row keeps
them encrypted for the collector, and as a keyed hash that tells a row already
collected by an earlier worklist: handing the same worklist over again skips it.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from relay_shared.db import session_scope
from relay_shared.models import Collection, CollectionRow, RowState
from relay_shared.reasons import RelayError
from relay_shared.vault import IdentifierVault

ACCESSION_HEADERS = {"accession", "accession_number", "accessionnumber", "acc"}
SETTLED = {RowState.DONE, RowState.NOT_FOUND, RowState.AMBIGUOUS, RowState.FAILED}


# C0 and C1 controls (C1: a Windows-1252 file read as Latin-1 shows them), tab apart.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class WorklistError(RelayError, ValueError):
    """The worklist cannot be read; the reason says which line and why, in the relay's
    own words, never a value of the worklist."""


@dataclass(frozen=True)
class Query:
    """One worklist row: an accession number, or a patient id with a date range."""

    accession: str = ""
    patient_id: str = ""
    date_from: str = ""
    date_to: str = ""

    @property
    def canonical(self) -> str:
        if self.accession:
            return f"accession:{self.accession}"
        return f"patient:{self.patient_id}:{self.date_from}:{self.date_to}"

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v}


def parse_worklist(text: str) -> list[Query]:
    """A header naming accession_number, or patient_id with date_from and date_to
    (YYYYMMDD); a file with no header is one accession number per line."""
    # Any line end (CR alone, from an old Mac or a hand edit, too) ends a row.
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        lines = [row for row in reader if any(cell.strip() for cell in row)]
    except csv.Error:  # a field too long, a stray quote
        raise WorklistError(f"line {reader.line_num}: not CSV (a field too long, or a quote "
                            "out of place)") from None
    for number, row in enumerate(lines, start=1):
        if any(CONTROL.search(cell) for cell in row):
            # No worklist value holds one, and a NUL cannot even be stored in PostgreSQL.
            raise WorklistError(f"line {number}: a value holds a control character")
    if not lines:
        raise WorklistError("the worklist is empty")
    header = [cell.strip().lower().replace(" ", "_") for cell in lines[0]]
    if not (set(header) & (ACCESSION_HEADERS | {"patient_id"})):
        return [_accession(row[0], n) for n, row in enumerate(lines, start=1)]
    queries = [_row(dict(zip(header, (c.strip() for c in row), strict=False)), n)
               for n, row in enumerate(lines[1:], start=2)]
    if not queries:
        raise WorklistError("the worklist has a header and no rows")
    return queries


def _accession(value: str, line: int) -> Query:
    value = value.strip()
    if not value or len(value) > 16 or "\\" in value or "*" in value or "?" in value:
        raise WorklistError(f"line {line}: an accession number has 1 to 16 characters, "
                            "without wildcards")
    return Query(accession=value)


def _row(row: dict[str, str], line: int) -> Query:
    accession = next((row[h] for h in ACCESSION_HEADERS if row.get(h)), "")
    if accession:
        return _accession(accession, line)
    patient_id = row.get("patient_id", "")
    dates = row.get("date_from", ""), row.get("date_to", "")
    if not patient_id or any(c in patient_id for c in "\\*?") or len(patient_id) > 64:
        raise WorklistError(f"line {line}: neither an accession number nor a patient id")
    for value in dates:
        if value and (len(value) != 8 or not value.isdigit()):
            raise WorklistError(f"line {line}: dates are YYYYMMDD")
    return Query(patient_id=patient_id, date_from=dates[0], date_to=dates[1])


def create_collection(engine: Engine, vault: IdentifierVault, name: str,
                      queries: list[Query]) -> int:
    """Record a worklist; rows an earlier worklist collected already start DONE."""
    with session_scope(engine) as session:
        collection = Collection(name=name[:128] or "worklist")
        session.add(collection)
        session.flush()
        assert collection.id is not None  # given by the flush
        for number, query in enumerate(queries, start=1):
            key_id, sealed = vault.seal(query.as_dict())
            # Keyed by the vault, not the deid secret: the api records worklists too,
            # and is not given that secret.
            digests = vault.lookup_digests(query.canonical)
            row = CollectionRow(collection_id=collection.id, row_number=number,
                                query_key=digests[0],
                                query_encrypted=sealed, query_key_id=key_id)
            _skip_if_collected(session, row, digests)
            session.add(row)
        assert collection.id is not None
        return collection.id


def _skip_if_collected(session: Session, row: CollectionRow, digests: list[str]) -> None:
    earlier = session.exec(select(CollectionRow).where(
        col(CollectionRow.query_key).in_(digests), CollectionRow.state == RowState.DONE.value)
        .order_by(col(CollectionRow.id))).first()
    if earlier is not None:
        row.state = RowState.DONE.value
        row.reason = (f"collected already (collection {earlier.collection_id}, "
                      f"row {earlier.row_number})")
        row.study_uids, row.series_uids = list(earlier.study_uids), list(earlier.series_uids)
        row.instances = earlier.instances
