"""Every query on sweep runs and their members (and the one read of a schedule that
run-now needs).

A run's counts are never stored: each read of a run counts its member rows in the same
statement, one aggregate with ``FILTER`` per status in a ``LATERAL`` subquery, so the
numbers can never disagree with the rows (``ix_sweep_run_member_run_status`` serves it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import LateralFromClause

from eligibility_sweeps.models import (
    MemberStatus,
    RunStatus,
    eligibility_sweep_run,
    member,
    sweep_run_member,
    sweep_schedule,
)
from rcm_kit.pagination import SortKey, page_of, paginate

run = eligibility_sweep_run
run_member = sweep_run_member

LIVE_STATUSES = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)
EXCEPTION_STATUSES = (MemberStatus.FAILED.value, MemberStatus.SKIPPED.value)

_RUN_KEYS = (
    SortKey(run.c.created_at, descending=True),
    SortKey(run.c.sweep_run_id, descending=True),
)
_MEMBER_KEYS = (
    SortKey(member.c.last_name),
    SortKey(member.c.first_name),
    SortKey(run_member.c.member_id),
)


def _has_anomalies() -> sa.ColumnElement[bool]:
    return sa.and_(
        run_member.c.status == MemberStatus.RECEIVED.value,
        sa.func.cardinality(run_member.c.anomalies) > 0,
    )


def _counts() -> LateralFromClause:
    status = run_member.c.status

    def of(value: MemberStatus) -> sa.ColumnElement[int]:
        return sa.func.count().filter(status == value.value)

    return (
        sa.select(
            sa.func.count().label("total"),
            of(MemberStatus.QUEUED).label("queued"),
            of(MemberStatus.SUBMITTED).label("submitted"),
            of(MemberStatus.RECEIVED).label("received"),
            of(MemberStatus.FAILED).label("failed"),
            of(MemberStatus.SKIPPED).label("skipped"),
            sa.func.count().filter(_has_anomalies()).label("anomalies"),
        )
        .where(run_member.c.sweep_run_id == run.c.sweep_run_id)
        .lateral("counts")
    )


def _runs_with_counts() -> sa.Select[Any]:
    counts = _counts()
    return sa.select(run, counts).select_from(run.join(counts, sa.true()))


async def get_run(session: AsyncSession, sweep_run_id: UUID) -> Any | None:
    """The run with its counts, or None."""
    query = _runs_with_counts().where(run.c.sweep_run_id == sweep_run_id)
    return (await session.execute(query)).first()


async def lock_run(session: AsyncSession, sweep_run_id: UUID) -> Any | None:
    """The run row (no counts), locked until the transaction ends: a worker changing the
    run's status waits for us, and we for it."""
    query = sa.select(run).where(run.c.sweep_run_id == sweep_run_id).with_for_update()
    return (await session.execute(query)).first()


async def list_runs(
    session: AsyncSession,
    *,
    status: RunStatus | None,
    schedule_id: UUID | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """A page of runs with their counts, newest first (created_at, then id, descending)."""
    filters = {"status": status.value if status else None, "schedule_id": schedule_id}
    query = _runs_with_counts()
    if status is not None:
        query = query.where(run.c.status == status.value)
    if schedule_id is not None:
        query = query.where(run.c.schedule_id == schedule_id)
    statement = paginate(query, _RUN_KEYS, cursor=cursor, filters=filters, limit=limit)
    rows = (await session.execute(statement)).all()
    return page_of(
        rows,
        limit=limit,
        key_values=lambda row: (row.created_at, row.sweep_run_id),
        filters=filters,
    )


async def insert_run(session: AsyncSession, values: dict[str, Any]) -> UUID:
    new_id: UUID = (
        await session.execute(sa.insert(run).values(values).returning(run.c.sweep_run_id))
    ).scalar_one()
    return new_id


async def copy_failed_members(
    session: AsyncSession, *, source_run_id: UUID, new_run_id: UUID, at: datetime
) -> int:
    """The FAILED members of ``source_run_id`` as QUEUED members of ``new_run_id`` (same
    service dates), in one statement; how many."""
    select_failed = sa.select(
        sa.literal(new_run_id, sa.Uuid),
        run_member.c.member_id,
        run_member.c.service_date,
        sa.literal(MemberStatus.QUEUED.value),
        sa.literal(at, sa.DateTime(timezone=True)),
    ).where(
        run_member.c.sweep_run_id == source_run_id,
        run_member.c.status == MemberStatus.FAILED.value,
    )
    result = await session.execute(
        sa.insert(run_member)
        .from_select(
            ["sweep_run_id", "member_id", "service_date", "status", "updated_at"], select_failed
        )
        .returning(run_member.c.member_id)
    )
    return len(result.all())


async def skip_queued_members(
    session: AsyncSession, sweep_run_id: UUID, reason: str, *, at: datetime
) -> int:
    """QUEUED members of the run become SKIPPED with ``reason``; how many."""
    result = await session.execute(
        sa.update(run_member)
        .where(
            run_member.c.sweep_run_id == sweep_run_id,
            run_member.c.status == MemberStatus.QUEUED.value,
        )
        .values(status=MemberStatus.SKIPPED.value, failure_reason=reason, updated_at=at)
        .returning(run_member.c.member_id)
    )
    return len(result.all())


async def set_run_status(
    session: AsyncSession, sweep_run_id: UUID, status: RunStatus, *, at: datetime, **values: Any
) -> None:
    await session.execute(
        sa.update(run)
        .where(run.c.sweep_run_id == sweep_run_id)
        .values(status=status.value, updated_at=at, **values)
    )


async def mark_roster_written(session: AsyncSession, sweep_run_id: UUID, *, at: datetime) -> None:
    """Every member row of the run exists: from now on it may become COMPLETED."""
    await session.execute(
        sa.update(run).where(run.c.sweep_run_id == sweep_run_id).values(roster_at=at, updated_at=at)
    )


async def list_members(
    session: AsyncSession,
    sweep_run_id: UUID,
    *,
    view: str,
    status: MemberStatus | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """A page of the run's members with their names, by last name, first name, then id.

    ``view``: ``all``; ``exceptions`` = FAILED and SKIPPED; ``anomalies`` = RECEIVED with
    an anomaly. ``status`` narrows any view further."""
    filters = {
        "sweep_run_id": sweep_run_id,
        "view": view,
        "status": status.value if status else None,
    }
    query = (
        sa.select(
            run_member.c.member_id,
            member.c.first_name,
            member.c.last_name,
            run_member.c.service_date,
            run_member.c.status,
            run_member.c.failure_reason,
            run_member.c.coverage_status,
            run_member.c.anomalies,
            run_member.c.check_ids,
            run_member.c.updated_at,
        )
        .join(member, member.c.member_id == run_member.c.member_id)
        .where(run_member.c.sweep_run_id == sweep_run_id)
    )
    if view == "exceptions":
        query = query.where(run_member.c.status.in_(EXCEPTION_STATUSES))
    elif view == "anomalies":
        query = query.where(_has_anomalies())
    if status is not None:
        query = query.where(run_member.c.status == status.value)
    statement = paginate(query, _MEMBER_KEYS, cursor=cursor, filters=filters, limit=limit)
    rows = (await session.execute(statement)).all()
    return page_of(
        rows,
        limit=limit,
        key_values=lambda row: (row.last_name, row.first_name, row.member_id),
        filters=filters,
    )


async def lock_schedule(session: AsyncSession, schedule_id: UUID) -> Any | None:
    """The schedule row, locked until the transaction ends. The supervisor's firing
    updates the same row (compare-and-set on ``next_fire_at``), so a run-now and a firing
    of one schedule take turns, and each sees the other's run in its overlap check."""
    query = (
        sa.select(sweep_schedule)
        .where(sweep_schedule.c.schedule_id == schedule_id)
        .with_for_update()
    )
    return (await session.execute(query)).first()


async def live_run_of_schedule(session: AsyncSession, schedule_id: UUID) -> UUID | None:
    """A QUEUED or RUNNING run of the schedule (the oldest), or None."""
    query = (
        sa.select(run.c.sweep_run_id)
        .where(run.c.schedule_id == schedule_id, run.c.status.in_(LIVE_STATUSES))
        .order_by(run.c.created_at, run.c.sweep_run_id)
        .limit(1)
    )
    found: UUID | None = (await session.execute(query)).scalar()
    return found
