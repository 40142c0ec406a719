"""Reads of the reference tables, shared by both services' picker lists."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from rcm_kit.pagination import SortKey, page_of, paginate
from rcm_reference.models import billing_entity, facility, payer


async def list_by_name(
    session: AsyncSession,
    table: sa.Table,
    id_column: str,
    *,
    cursor: str | None,
    limit: int,
    filters: dict[str, Any] | None = None,
    where: sa.ColumnElement[bool] | None = None,
) -> tuple[list[Any], str | None]:
    """A page of ``table`` ordered by name then id."""
    query = sa.select(table)
    if where is not None:
        query = query.where(where)
    keys = [SortKey(table.c.name), SortKey(table.c[id_column])]
    rows = (
        await session.execute(
            paginate(query, keys, cursor=cursor, filters=filters or {}, limit=limit)
        )
    ).all()
    return page_of(
        rows,
        limit=limit,
        key_values=lambda row: (row.name, getattr(row, id_column)),
        filters=filters or {},
    )


async def list_payers(
    session: AsyncSession, *, cursor: str | None, limit: int, active: bool | None = None
) -> tuple[list[Any], str | None]:
    return await list_by_name(
        session,
        payer,
        "payer_id",
        cursor=cursor,
        limit=limit,
        filters={"active": active},
        where=None if active is None else payer.c.active.is_(active),
    )


async def list_billing_entities(
    session: AsyncSession, *, cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    return await list_by_name(
        session, billing_entity, "billing_entity_id", cursor=cursor, limit=limit
    )


async def list_facilities(
    session: AsyncSession, *, cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    return await list_by_name(session, facility, "facility_id", cursor=cursor, limit=limit)


async def existing_ids(session: AsyncSession, table: sa.Table, ids: list[Any]) -> set[Any]:
    """Which of ``ids`` exist in ``table`` (for 422s naming an unknown referenced id)."""
    if not ids:
        return set()
    id_column = table.primary_key.columns.values()[0]
    rows = await session.execute(sa.select(id_column).where(id_column.in_(ids)))
    return set(rows.scalars())


async def ids_by_code(
    session: AsyncSession, table: sa.Table, codes: Iterable[str]
) -> dict[str, Any]:
    """``{code: id}`` for those of ``codes`` that exist in ``table`` (``<table>_code`` column).

    One array parameter rather than an IN list, so a file of any size stays one query.
    """
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    code = table.c[f"{table.name}_code"]
    id_column = table.c[f"{table.name}_id"]
    rows = await session.execute(
        sa.select(code, id_column).where(code == sa.any_(sa.literal(wanted, ARRAY(sa.String))))
    )
    return {row[0]: row[1] for row in rows}
