"""``rcm import``: validate a whole CSV/NDJSON file, then upsert it in one transaction.

Every row is checked before anything is written: a bad row is reported with its line
number and reason, and nothing of the file is stored. Rows upsert by their natural key
and only rows whose values differ are touched, so importing the same file twice
changes nothing (not even ``updated_at``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

Line = int
ParsedRow = tuple[Line, BaseModel]


class ImportRejected(Exception):
    """The file is refused; ``errors`` lists ``(line, reason)`` pairs."""

    def __init__(self, errors: Sequence[tuple[Line, str]]) -> None:
        self.errors = sorted(errors)
        super().__init__("; ".join(f"line {line}: {reason}" for line, reason in self.errors))


@dataclass
class ImportStats:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __iadd__(self, other: ImportStats) -> ImportStats:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        return self


@dataclass(frozen=True)
class ImportKind:
    """One ``rcm import`` kind: how a row looks, its natural key, and how rows are stored.

    ``apply`` resolves references (raising ``ImportRejected`` naming the lines whose
    references are unknown) and upserts the rows.
    """

    name: str
    row_model: type[BaseModel]
    natural_key: Callable[[Any], Hashable]
    apply: Callable[[AsyncSession, list[ParsedRow]], Awaitable[ImportStats]]


def read_records(path: Path) -> list[tuple[Line, dict[str, Any]]]:
    """Rows of a CSV file (line numbers count the header as line 1) or an NDJSON file."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in (".ndjson", ".jsonl"):
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise ImportRejected([(number, f"not valid JSON: {error.msg}")]) from None
            if not isinstance(value, dict):
                raise ImportRejected([(number, "each line must be a JSON object")])
            records.append((number, value))
        return records
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames:
        raise ImportRejected([(1, "the file has no header row")])
    rows = []
    for row in reader:
        if None in row:
            raise ImportRejected([(reader.line_num, "the row has more fields than the header")])
        rows.append((reader.line_num, dict(row)))
    return rows


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    cleaned = {}
    for key, value in record.items():
        name = key.strip() if isinstance(key, str) else key
        if isinstance(value, str):
            value = value.strip()
            if value == "":
                value = None
        cleaned[name] = value
    return cleaned


def parse(
    kind: ImportKind, records: list[tuple[Line, dict[str, Any]]]
) -> tuple[list[ParsedRow], list[tuple[Line, str]]]:
    """Validate every record: the rows that are well formed, and ``(line, reason)`` for the rest."""
    known = set(kind.row_model.model_fields)
    errors: list[tuple[Line, str]] = []
    rows: list[ParsedRow] = []
    seen: dict[Hashable, Line] = {}
    for line, record in records:
        values = _clean(record)
        unknown = sorted(set(values) - known)
        if unknown:
            errors.append((line, f"unknown column(s) {', '.join(map(str, unknown))}"))
            continue
        try:
            row = kind.row_model.model_validate(values)
        except ValidationError as error:
            reasons = []
            for item in error.errors():
                field = ".".join(str(p) for p in item["loc"]) or "row"
                reasons.append(f"{field}: {item['msg'].removeprefix('Value error, ')}")
            errors.append((line, "; ".join(reasons)))
            continue
        key = kind.natural_key(row)
        if key in seen:
            errors.append((line, f"repeats the natural key of line {seen[key]}"))
            continue
        seen[key] = line
        rows.append((line, row))
    return rows, errors


async def run_import(session: AsyncSession, kind: ImportKind, path: Path) -> ImportStats:
    """Validate ``path`` whole, then store it through ``kind`` in the caller's transaction.

    When some lines are malformed, the well-formed ones are still applied inside a
    savepoint that is always rolled back, so one report names every bad line: malformed
    ones and ones whose references are unknown. Nothing of a rejected file is written.
    """
    rows, errors = parse(kind, read_records(path))
    if not errors:
        return await kind.apply(session, rows)
    try:
        async with session.begin_nested() as trial:
            await kind.apply(session, rows)
            await trial.rollback()
    except ImportRejected as unresolved:
        errors.extend(unresolved.errors)
    raise ImportRejected(errors)


async def upsert(
    session: AsyncSession,
    table: sa.Table,
    values: Sequence[dict[str, Any]],
    *,
    key: Sequence[str | sa.ColumnElement[Any]],
    compare: Sequence[str] | None = None,
    touch: str | None = "updated_at",
    bump: str | None = None,
    chunk: int = 500,
) -> ImportStats:
    """Insert ``values``; where the natural ``key`` exists, update the rows that differ.

    ``key`` names the unique columns, or holds the expressions of a unique expression index
    (e.g. a coalesced nullable column). ``compare`` lists the columns that may change
    (default: every given column outside the key and the primary key). Rows whose compared
    values are all equal are left alone, not even ``touch`` moves; a changed row bumps the
    ``touch`` timestamp and increments the ``bump`` counter (an optimistic-lock version).
    """
    stats = ImportStats()
    if not values:
        return stats
    if compare is None:
        fixed = {k for k in key if isinstance(k, str)} | set(table.primary_key.columns.keys())
        compare = [c for c in values[0] if c not in fixed]
    for start in range(0, len(values), chunk):
        batch = list(values[start : start + chunk])
        statement = insert(table).values(batch)
        excluded = statement.excluded
        if compare:
            changes: dict[str, Any] = {c: excluded[c] for c in compare}
            if touch:
                changes[touch] = sa.func.now()
            if bump:
                changes[bump] = table.c[bump] + 1
            differs = sa.tuple_(*(table.c[c] for c in compare)).is_distinct_from(
                sa.tuple_(*(excluded[c] for c in compare))
            )
            statement = statement.on_conflict_do_update(
                index_elements=list(key), set_=changes, where=differs
            )
        else:
            statement = statement.on_conflict_do_nothing(index_elements=list(key))
        result: sa.Result[Any] = await session.execute(
            statement.returning(sa.literal_column("(xmax = 0)").label("inserted"))
        )
        flags = [row.inserted for row in result]
        inserted = sum(1 for flag in flags if flag)
        stats.inserted += inserted
        stats.updated += len(flags) - inserted
        stats.unchanged += len(batch) - len(flags)
    return stats
