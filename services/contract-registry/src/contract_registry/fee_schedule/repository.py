"""Every query on fee schedules and their lines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from contract_registry.models import fee_schedule, fee_schedule_line, payer_contract
from contract_registry.sql import nil_if_null
from rcm_kit.importing import ImportStats, upsert
from rcm_kit.pagination import SortKey, page_of, paginate
from rcm_reference.models import payer

_LIST_KEYS = (SortKey(fee_schedule.c.name), SortKey(fee_schedule.c.fee_schedule_id))


async def list_for_contract(
    session: AsyncSession, contract_id: UUID, *, cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """A page of the contract's schedules with their line counts, by name then id."""
    lines = (
        sa.select(sa.func.count())
        .where(fee_schedule_line.c.fee_schedule_id == fee_schedule.c.fee_schedule_id)
        .scalar_subquery()
    )
    query = sa.select(
        fee_schedule.c.fee_schedule_id,
        fee_schedule.c.contract_id,
        fee_schedule.c.name,
        fee_schedule.c.effective_from,
        fee_schedule.c.effective_to,
        lines.label("line_count"),
    ).where(fee_schedule.c.contract_id == contract_id)
    filters = {"contract_id": contract_id}
    rows = (
        await session.execute(
            paginate(query, _LIST_KEYS, cursor=cursor, filters=filters, limit=limit)
        )
    ).all()
    return page_of(
        rows,
        limit=limit,
        key_values=lambda row: (row.name, row.fee_schedule_id),
        filters=filters,
    )


async def ids_by_key(
    session: AsyncSession,
) -> dict[tuple[str | None, str | None, str], UUID]:
    """``{(payer_code, contract_number, name): fee_schedule_id}``, ``(None, None, name)``
    for unlinked schedules."""
    rows = await session.execute(
        sa.select(
            payer.c.payer_code,
            payer_contract.c.contract_number,
            fee_schedule.c.name,
            fee_schedule.c.fee_schedule_id,
        )
        .select_from(fee_schedule)
        .outerjoin(payer_contract, payer_contract.c.contract_id == fee_schedule.c.contract_id)
        .outerjoin(payer, payer.c.payer_id == payer_contract.c.payer_id)
    )
    return {(row.payer_code, row.contract_number, row.name): row.fee_schedule_id for row in rows}


async def upsert_schedules(session: AsyncSession, values: Sequence[dict[str, Any]]) -> ImportStats:
    """By (contract, name), unlinked schedules included (the expression unique index)."""
    return await upsert(
        session,
        fee_schedule,
        values,
        key=[nil_if_null(fee_schedule.c.contract_id), fee_schedule.c.name],
        compare=["effective_from", "effective_to"],
    )


async def upsert_lines(session: AsyncSession, values: Sequence[dict[str, Any]]) -> ImportStats:
    return await upsert(
        session, fee_schedule_line, values, key=["fee_schedule_id", "procedure_code", "modifier"]
    )
