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
    key: Sequence[str],
    touch: str | None = "updated_at",
    chunk: int = 500,
) -> ImportStats:
    """Insert ``values``, updating rows whose natural ``key`` exists and whose values differ.

    Unchanged rows are left alone. ``touch`` names a timestamp column bumped on update.
    """
    stats = ImportStats()
    if not values:
        return stats
    columns = [c for c in values[0] if c not in key and c != table.primary_key.columns.keys()[0]]
    for start in range(0, len(values), chunk):
        batch = values[start : start + chunk]
        statement = insert(table).values(list(batch))
        excluded = statement.excluded
        changes: dict[str, Any] = {c: excluded[c] for c in columns}
        if touch:
            changes[touch] = sa.func.now()
        if columns:
            differs = sa.tuple_(*(table.c[c] for c in columns)).is_distinct_from(
                sa.tuple_(*(excluded[c] for c in columns))
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
