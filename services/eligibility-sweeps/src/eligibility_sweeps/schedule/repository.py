"""Every query on sweep schedules.

Writers lock the row first (``lock_schedule``): the supervisor's firing updates the same
row (a compare-and-set on ``next_fire_at``), so an edit and a firing take turns instead
of one overwriting the other's ``next_fire_at``.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.models import sweep_schedule
from rcm_kit.pagination import SortKey, page_of, paginate

schedule = sweep_schedule

_LIST_KEYS = (SortKey(schedule.c.name), SortKey(schedule.c.schedule_id))


async def list_schedules(
    session: AsyncSession, *, cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """A page of schedules by name, then id."""
    statement = paginate(sa.select(schedule), _LIST_KEYS, cursor=cursor, filters={}, limit=limit)
    rows = (await session.execute(statement)).all()
    return page_of(
        rows, limit=limit, key_values=lambda row: (row.name, row.schedule_id), filters={}
    )


async def get_schedule(session: AsyncSession, schedule_id: UUID) -> Any | None:
    query = sa.select(schedule).where(schedule.c.schedule_id == schedule_id)
    return (await session.execute(query)).first()


async def lock_schedule(session: AsyncSession, schedule_id: UUID) -> Any | None:
    """The stored schedule, locked until the transaction ends."""
    query = sa.select(schedule).where(schedule.c.schedule_id == schedule_id).with_for_update()
    return (await session.execute(query)).first()


async def insert_schedule(session: AsyncSession, values: dict[str, Any]) -> Any:
    statement = sa.insert(schedule).values(values).returning(*schedule.c)
    return (await session.execute(statement)).one()


async def update_schedule(session: AsyncSession, schedule_id: UUID, values: dict[str, Any]) -> Any:
    statement = (
        sa.update(schedule)
        .where(schedule.c.schedule_id == schedule_id)
        .values(values)
        .returning(*schedule.c)
    )
    return (await session.execute(statement)).one()


async def delete_schedule(session: AsyncSession, schedule_id: UUID) -> bool:
    """Delete the schedule (its runs keep their history, unlinked); False when none."""
    result = await session.execute(
        sa.delete(schedule)
        .where(schedule.c.schedule_id == schedule_id)
        .returning(schedule.c.schedule_id)
    )
    return result.first() is not None
