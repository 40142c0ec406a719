"""SQL helpers shared by the contract registry's repositories.

Upserts the kit's ``rcm_kit.importing.upsert`` cannot express: a conflict target that
is an expression index (NULL scope columns coalesced to the nil UUID) and a ``version``
bumped whenever a row really changes, so an import invalidates a stale ``If-Match``.

Same statistics as the kit's: a row whose values are all equal is left alone (not even
``updated_at`` moves), so storing the same rows twice reports them all unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contract_registry.models.base import NIL_UUID
from rcm_kit.importing import ImportStats


def nil_if_null(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """``coalesce(column, nil uuid)``: the exact expression of the scope unique indexes."""
    return sa.func.coalesce(column, sa.text(f"'{NIL_UUID}'::uuid"))


def violates(error: IntegrityError, constraint: str) -> bool:
    """Whether ``error`` is a violation of the constraint or unique index ``constraint``."""
    cause = getattr(error.orig, "__cause__", None)
    name = getattr(cause, "constraint_name", None)  # asyncpg names it
    return name == constraint if name is not None else constraint in str(error.orig)


async def upsert_rows(
    session: AsyncSession,
    table: sa.Table,
    values: Sequence[dict[str, Any]],
    *,
    conflict: Sequence[str | sa.ColumnElement[Any]],
    compare: Sequence[str],
    touch: str | None = "updated_at",
    bump: str | None = None,
    chunk: int = 500,
) -> ImportStats:
    """Insert ``values``; where the ``conflict`` key exists, update the ``compare`` columns
    of rows that differ in one of them (bumping ``touch`` and incrementing ``bump``)."""
    stats = ImportStats()
    for start in range(0, len(values), chunk):
        batch = list(values[start : start + chunk])
        statement = insert(table).values(batch)
        excluded = statement.excluded
        changes: dict[str, Any] = {name: excluded[name] for name in compare}
        if touch:
            changes[touch] = sa.func.now()
        if bump:
            changes[bump] = table.c[bump] + 1
        differs = sa.tuple_(*(table.c[name] for name in compare)).is_distinct_from(
            sa.tuple_(*(excluded[name] for name in compare))
        )
        statement = statement.on_conflict_do_update(
            index_elements=list(conflict), set_=changes, where=differs
        )
        result: sa.Result[Any] = await session.execute(
            statement.returning(sa.literal_column("(xmax = 0)").label("inserted"))
        )
        flags = [row.inserted for row in result]
        inserted = sum(1 for flag in flags if flag)
        stats.inserted += inserted
        stats.updated += len(flags) - inserted
        stats.unchanged += len(batch) - len(flags)
    return stats
