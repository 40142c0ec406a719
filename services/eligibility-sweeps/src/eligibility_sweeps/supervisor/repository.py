"""Every query of the supervisor on a tenant's database.

The firing itself is a compare-and-set (``advance_schedule``) on a row first locked with
``SKIP LOCKED`` (``lock_for_firing``): an API edit or another supervisor holding the row
makes this supervisor look again at its next tick instead of waiting for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.models import (
    RunStatus,
    eligibility_sweep_run,
    sweep_firing_skip,
    sweep_schedule,
)

schedule = sweep_schedule
run = eligibility_sweep_run

LIVE_STATUSES = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)


@dataclass(frozen=True)
class LiveRun:
    sweep_run_id: UUID
    status: str


async def armed_schedules(session: AsyncSession) -> dict[UUID, datetime]:
    """Every active schedule's next fire time (``ix_sweep_schedule_due`` serves it)."""
    query = sa.select(schedule.c.schedule_id, schedule.c.next_fire_at).where(
        schedule.c.active, schedule.c.next_fire_at.is_not(None)
    )
    return {row.schedule_id: row.next_fire_at for row in await session.execute(query)}


async def next_fire_at(session: AsyncSession, schedule_id: UUID) -> datetime | None:
    """The schedule's next fire time; None when it is paused or gone."""
    query = sa.select(schedule.c.next_fire_at).where(
        schedule.c.schedule_id == schedule_id, schedule.c.active
    )
    found: datetime | None = (await session.execute(query)).scalar()
    return found


async def lock_for_firing(session: AsyncSession, schedule_id: UUID) -> Any | None:
    """The schedule locked until the transaction ends, or None when it is gone or another
    transaction holds it (an edit, or another supervisor firing it)."""
    query = (
        sa.select(schedule)
        .where(schedule.c.schedule_id == schedule_id)
        .with_for_update(skip_locked=True)
    )
    return (await session.execute(query)).first()


async def advance_schedule(
    session: AsyncSession,
    schedule_id: UUID,
    *,
    due: datetime,
    next_fire: datetime,
    fired: datetime | None,
) -> bool:
    """The compare-and-set that decides a firing::

        UPDATE sweep_schedule SET next_fire_at = :next, last_fired_at = :fired
        WHERE schedule_id = :id AND active AND next_fire_at = :due

    True when this transaction moved the schedule on from ``due``; False when the schedule
    was paused, deleted or already moved on (by an edit or another supervisor).
    ``last_fired_at`` keeps its value when ``fired`` is None (every slot was missed).
    """
    result = await session.execute(
        sa.update(schedule)
        .where(
            schedule.c.schedule_id == schedule_id,
            schedule.c.active,
            schedule.c.next_fire_at == due,
        )
        .values(
            next_fire_at=next_fire,
            last_fired_at=sa.func.coalesce(
                sa.cast(sa.literal(fired), sa.DateTime(timezone=True)), schedule.c.last_fired_at
            ),
        )
        .returning(schedule.c.schedule_id)
    )
    return result.first() is not None


async def live_run_of_schedule(session: AsyncSession, schedule_id: UUID) -> LiveRun | None:
    """The oldest QUEUED or RUNNING run of the schedule, or None."""
    query = (
        sa.select(run.c.sweep_run_id, run.c.status)
        .where(run.c.schedule_id == schedule_id, run.c.status.in_(LIVE_STATUSES))
        .order_by(run.c.created_at, run.c.sweep_run_id)
        .limit(1)
    )
    row = (await session.execute(query)).first()
    return LiveRun(row.sweep_run_id, row.status) if row is not None else None


async def record_skips(
    session: AsyncSession,
    schedule_id: UUID,
    skips: Sequence[tuple[datetime, str]],
    *,
    at: datetime,
) -> None:
    """One ``sweep_firing_skip`` row per ``(scheduled_for, reason)``; a slot already
    recorded keeps its first reason."""
    if not skips:
        return
    await session.execute(
        insert(sweep_firing_skip)
        .values(
            [
                {
                    "schedule_id": schedule_id,
                    "scheduled_for": slot,
                    "reason": reason,
                    "recorded_at": at,
                }
                for slot, reason in skips
            ]
        )
        .on_conflict_do_nothing(index_elements=["schedule_id", "scheduled_for"])
    )


async def unattended_runs(
    session: AsyncSession, *, changed_before: datetime, limit: int
) -> list[LiveRun]:
    """QUEUED or RUNNING runs whose row has not changed since ``changed_before``
    (``ix_eligibility_sweep_run_live`` serves it), oldest first."""
    query = (
        sa.select(run.c.sweep_run_id, run.c.status)
        .where(run.c.status.in_(LIVE_STATUSES), run.c.updated_at <= changed_before)
        .order_by(run.c.updated_at, run.c.sweep_run_id)
        .limit(limit)
    )
    return [LiveRun(row.sweep_run_id, row.status) for row in await session.execute(query)]
