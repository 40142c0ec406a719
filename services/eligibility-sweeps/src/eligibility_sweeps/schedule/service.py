"""Sweep schedules: referenced facility and payers that exist, a window in order and at
most 90 days wide, and ``next_fire_at`` kept right.

``next_fire_at`` is computed here (``cron.next_fire`` from the caller's clock) when a
schedule is created active, when its cron or time zone changes while active, and when it
is resumed; pausing clears it and keeps the configuration. From then on the supervisor
owns it (it moves it forward at each firing). Every change is audited (field names
only) in its transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.audit import audit_change
from eligibility_sweeps.models import MAX_WINDOW_DAYS
from eligibility_sweeps.schedule import repository
from eligibility_sweeps.schedule.cron import next_fire_times
from eligibility_sweeps.schedule.schemas import (
    CronPreset,
    CronPreview,
    CronPreviewRequest,
    ScheduleCreate,
    ScheduleRead,
    ScheduleUpdate,
)
from rcm_kit.audit import AuditAction
from rcm_kit.auth import Principal
from rcm_kit.errors import Loc, NotFound, raise_if_any
from rcm_kit.pagination import Page
from rcm_reference.models import facility, payer
from rcm_reference.repository import existing_ids

NOT_FOUND = "No sweep schedule with this schedule_id in your organization."
UNKNOWN = "no {} with this id in your organization"

# The configuration a client sets; ``next_fire_at`` and ``last_fired_at`` follow from it.
_FIELDS = (
    "name",
    "cron",
    "timezone",
    "facility_id",
    "window_start_days",
    "window_end_days",
    "payer_ids",
    "active",
)

CRON_PRESETS = (
    CronPreset(id="nightly-2am-utc", label="Nightly 2 AM UTC", cron="0 2 * * *"),
    CronPreset(id="nightly-6pm-utc", label="Nightly 6 PM UTC", cron="0 18 * * *"),
    CronPreset(id="weekdays-5am-utc", label="Weekdays 5 AM UTC", cron="0 5 * * 1-5"),
    CronPreset(id="every-6-hours", label="Every 6 hours", cron="0 */6 * * *"),
    CronPreset(id="hourly", label="Every hour", cron="0 * * * *"),
    CronPreset(id="weekly-sunday-10pm-utc", label="Sundays 10 PM UTC", cron="0 22 * * 0"),
)

ENTITY = "sweep_schedule"


class ScheduleNotFound(NotFound):
    title = "Sweep schedule not found"


def _read(row: Any) -> ScheduleRead:
    return ScheduleRead.model_validate(row)


def _next_fire(cron: str, timezone: str, now: datetime) -> datetime:
    return next_fire_times(cron, timezone, now, 1)[0]


def preview(body: CronPreviewRequest, *, now: datetime) -> CronPreview:
    return CronPreview(
        cron=body.cron,
        timezone=body.timezone,
        next_fire_times=next_fire_times(body.cron, body.timezone, now, body.count),
    )


async def _check(
    session: AsyncSession,
    *,
    facility_id: UUID | None,
    payer_ids: list[UUID] | None,
    window: tuple[int, int],
) -> None:
    """422 naming each unknown reference and each broken window rule. ``payer_ids`` is
    None when it is not being set (its stored value was checked when it was)."""
    errors: list[tuple[Loc, str]] = []
    if facility_id is not None and not await existing_ids(session, facility, [facility_id]):
        errors.append((["facility_id"], UNKNOWN.format("facility")))
    known = await existing_ids(session, payer, list(payer_ids or []))
    for index, payer_id in enumerate(payer_ids or []):
        if payer_id not in known:
            errors.append((["payer_ids", index], UNKNOWN.format("payer")))
    start, end = window
    if start > end:
        errors.append((["window_start_days"], "must not be after window_end_days"))
    elif end - start > MAX_WINDOW_DAYS:
        errors.append(
            (
                ["window_end_days"],
                f"the window may span at most {MAX_WINDOW_DAYS} days "
                f"(window_end_days - window_start_days is {end - start})",
            )
        )
    raise_if_any(errors)


async def list_schedules(
    session: AsyncSession, *, cursor: str | None, limit: int
) -> Page[ScheduleRead]:
    rows, next_cursor = await repository.list_schedules(session, cursor=cursor, limit=limit)
    return Page(items=[_read(row) for row in rows], next_cursor=next_cursor)


async def get_schedule(session: AsyncSession, schedule_id: UUID) -> ScheduleRead:
    row = await repository.get_schedule(session, schedule_id)
    if row is None:
        raise ScheduleNotFound(NOT_FOUND)
    return _read(row)


async def create_schedule(
    session: AsyncSession, body: ScheduleCreate, *, actor: Principal, at: datetime
) -> ScheduleRead:
    await _check(
        session,
        facility_id=body.facility_id,
        payer_ids=body.payer_ids,
        window=(body.window_start_days, body.window_end_days),
    )
    values = {name: getattr(body, name) for name in _FIELDS}
    values["next_fire_at"] = _next_fire(body.cron, body.timezone, at) if body.active else None
    row = await repository.insert_schedule(session, {**values, "created_at": at, "updated_at": at})
    await audit_change(
        session, AuditAction.CREATE, ENTITY, row.schedule_id, list(_FIELDS), actor=actor, at=at
    )
    return _read(row)


async def update_schedule(
    session: AsyncSession,
    schedule_id: UUID,
    body: ScheduleUpdate,
    *,
    actor: Principal,
    at: datetime,
) -> tuple[ScheduleRead, bool]:
    """The schedule after the change, and whether anything changed."""
    current = await repository.lock_schedule(session, schedule_id)
    if current is None:
        raise ScheduleNotFound(NOT_FOUND)
    sent = {name: getattr(body, name) for name in _FIELDS if name in body.model_fields_set}
    merged = {name: sent.get(name, getattr(current, name)) for name in _FIELDS}
    await _check(
        session,
        facility_id=sent.get("facility_id"),
        payer_ids=sent.get("payer_ids"),
        window=(merged["window_start_days"], merged["window_end_days"]),
    )
    changes = {
        name: value
        for name, value in sent.items()
        if value != getattr(current, name)
        and not (name == "payer_ids" and list(value) == list(current.payer_ids))
    }
    if not changes:
        return _read(current), False
    values: dict[str, Any] = {**changes, "updated_at": at}
    if not merged["active"]:
        values["next_fire_at"] = None
    elif {"active", "cron", "timezone"} & changes.keys():
        values["next_fire_at"] = _next_fire(merged["cron"], merged["timezone"], at)
    row = await repository.update_schedule(session, schedule_id, values)
    await audit_change(
        session, AuditAction.UPDATE, ENTITY, schedule_id, list(changes), actor=actor, at=at
    )
    return _read(row), True


async def set_active(
    session: AsyncSession, schedule_id: UUID, active: bool, *, actor: Principal, at: datetime
) -> tuple[ScheduleRead, bool]:
    """Pause (``active`` false: ``next_fire_at`` null, configuration kept) or resume (the
    next fire time from ``at``; slots missed while paused are not fired). Pausing a
    paused schedule or resuming an active one changes nothing."""
    return await update_schedule(
        session, schedule_id, ScheduleUpdate(active=active), actor=actor, at=at
    )


async def delete_schedule(
    session: AsyncSession, schedule_id: UUID, *, actor: Principal, at: datetime
) -> None:
    if await repository.lock_schedule(session, schedule_id) is None:
        raise ScheduleNotFound(NOT_FOUND)
    await repository.delete_schedule(session, schedule_id)
    await audit_change(session, AuditAction.DELETE, ENTITY, schedule_id, [], actor=actor, at=at)
