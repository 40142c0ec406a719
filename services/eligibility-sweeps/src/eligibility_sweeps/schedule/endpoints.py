"""Sweep schedules, the cron help of the schedule dialog, and the scheduler's status.

Change signals. A supervisor must never reload a change that did not commit, yet the
request's transaction (``tenant_scope``) commits only when the endpoint has returned.
So the endpoints hand the publish to a FastAPI ``BackgroundTasks``: Starlette runs it
once the response has been sent, and FastAPI sends the response only after the
function-scoped dependency (the transaction) has exited, i.e. committed. A commit that
fails answers an error and its response never runs the task. This keeps the signal out
of the service (which only flushes) without a second transaction helper; a Redis hiccup
costs only the hot-load, as the supervisors' periodic resync catches up.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, BackgroundTasks, Response
from redis.exceptions import RedisError

from eligibility_sweeps.schedule import heartbeat, service
from eligibility_sweeps.schedule.schemas import (
    CronPreset,
    CronPreview,
    CronPreviewRequest,
    ScheduleCreate,
    ScheduleRead,
    SchedulerStatus,
    ScheduleUpdate,
)
from eligibility_sweeps.schedule.signals import ChangeKind, publish_change_after_commit
from rcm_kit.auth import ELIGIBILITY_READ, ELIGIBILITY_UPDATE
from rcm_kit.logging import get_logger
from rcm_kit.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from rcm_kit.service import TenantScope, tenant_scope

log = get_logger(__name__)
router = APIRouter(prefix="/api/v1/eligibility/sweeps", tags=["sweep schedules"])
Reader = Annotated[TenantScope, tenant_scope(ELIGIBILITY_READ)]
Writer = Annotated[TenantScope, tenant_scope(ELIGIBILITY_UPDATE)]


def _signal(
    background: BackgroundTasks, scope: TenantScope, schedule_id: UUID, change: ChangeKind
) -> None:
    background.add_task(
        publish_change_after_commit,
        scope.runtime.redis,
        scope.tenant.tenant_id,
        schedule_id,
        database_url=scope.runtime.settings.DATABASE_URL,
        change=change,
    )


@router.get("/cron-presets", response_model=list[CronPreset])
async def cron_presets(scope: Reader) -> list[CronPreset]:
    """Cron presets for the schedule dialog's picker, as a bare array of
    `{"id", "label", "cron"}`, e.g. `{"id": "nightly-2am-utc", "label": "Nightly 2 AM
    UTC", "cron": "0 2 * * *"}`. A preset sets only the cron: the schedule's `timezone`
    says which clock it reads (the labels assume UTC, the default). Needs
    `eligibility.read`.
    """
    return list(service.CRON_PRESETS)


@router.post("/cron-preview", response_model=CronPreview)
async def cron_preview(body: CronPreviewRequest, scope: Reader) -> CronPreview:
    """The next `count` (1-50, default 5) fire times of `cron` in `timezone` (default
    `UTC`) from now, as UTC instants: exactly what a schedule with these values would do,
    so the dialog can show the next fire time as the user types.

    Time zones are real: `0 2 * * *` in `America/New_York` fires at 02:00 local every day.
    On the spring-forward day a local time that does not exist fires at the end of the gap
    (03:00 local, once); on the fall-back day a repeated local time fires once, at its
    first occurrence. An expression whose hour field is `*` or `*/n` (every hour, every n
    hours) is an interval: it fires at both occurrences of the repeated hour, so it keeps
    its rhythm.

    422 naming the field and why: `cron` not exactly 5 valid fields (which field, and its
    allowed range) or never matching a date; `timezone` not an IANA name; `count` outside
    1-50. Needs `eligibility.read`.
    """
    return service.preview(body, now=scope.runtime.clock.now())


@router.get("/scheduler", response_model=SchedulerStatus)
async def scheduler_status(scope: Reader) -> SchedulerStatus:
    """Whether schedules are firing, so the SPA can warn when they are not.

    From the heartbeat the supervisor (`sweeps-supervisor`) writes every few seconds:
    - running and enabled: `{"enabled": true, "running": true, "last_tick_at": <instant>,
      "armed_schedules": <your active schedules it holds>}`;
    - running with `SWEEP_SCHEDULER_ENABLED=false`: `enabled: false`, `running: true`,
      `last_tick_at` set: nothing fires until an operator re-enables it (manual runs and
      run-now still work);
    - no supervisor has reported for about 30 seconds (none running, or it cannot reach
      Redis): `enabled: false`, `running: false`, `last_tick_at: null`,
      `armed_schedules: 0`: nothing fires.

    `armed_schedules` counts your organization's schedules only. Needs `eligibility.read`.
    """
    runtime = scope.runtime
    try:
        beat = await heartbeat.read_heartbeat(
            runtime.redis,
            database_url=runtime.settings.DATABASE_URL,
            tenant_id=scope.tenant.tenant_id,
        )
    except (RedisError, OSError, ValueError, KeyError, TypeError) as error:
        log.warning("schedule.scheduler_status_unavailable", error=type(error).__name__)
        beat = None
    if beat is None:
        return SchedulerStatus(enabled=False, running=False, last_tick_at=None, armed_schedules=0)
    return SchedulerStatus(
        enabled=beat.enabled,
        running=True,
        last_tick_at=beat.last_tick_at,
        armed_schedules=beat.armed_schedules,
    )


@router.get("/schedules", response_model=Page[ScheduleRead])
async def list_schedules(
    scope: Reader, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[ScheduleRead]:
    """Every sweep schedule of your organization by name, then id, paused ones included
    (`active: false`, `next_fire_at: null`). Needs `eligibility.read`.
    """
    return await service.list_schedules(scope.session, cursor=cursor, limit=limit)


@router.post("/schedules", response_model=ScheduleRead, status_code=201)
async def create_schedule(
    body: ScheduleCreate, scope: Writer, background: BackgroundTasks
) -> ScheduleRead:
    """Create a sweep schedule; it fires at each `cron` time in `timezone` and sweeps the
    members with a visit in the window (`window_start_days` to `window_end_days`, days
    relative to the fire date in the schedule's time zone), at `facility_id` (null: all)
    and, with `payer_ids`, only members holding a policy from one of those payers.

    Answers 201 with the schedule, its `next_fire_at` computed from now (null when
    created with `active: false`). The supervisor picks it up within seconds.

    422 naming the field and the rule: `name` empty or over 120 characters; `cron` not
    exactly 5 valid fields; `timezone` not an IANA name; `window_start_days` after
    `window_end_days` or a window over 90 days; a `facility_id` or `payer_ids` entry that
    does not exist in your organization. Audited. Needs `eligibility.update`.
    """
    created = await service.create_schedule(
        scope.session, body, actor=scope.principal, at=scope.runtime.clock.now()
    )
    _signal(background, scope, created.schedule_id, ChangeKind.CREATED)
    return created


@router.get("/schedules/{schedule_id}", response_model=ScheduleRead)
async def get_schedule(schedule_id: UUID, scope: Reader) -> ScheduleRead:
    """One sweep schedule. 404 when it does not exist in your organization. Needs
    `eligibility.read`.
    """
    return await service.get_schedule(scope.session, schedule_id)


@router.patch("/schedules/{schedule_id}", response_model=ScheduleRead)
async def update_schedule(
    schedule_id: UUID, body: ScheduleUpdate, scope: Writer, background: BackgroundTasks
) -> ScheduleRead:
    """Edit a schedule: only the fields sent change (`payer_ids` is replaced whole;
    `facility_id: null` means every facility).

    A new `cron` or `timezone` on an active schedule recomputes `next_fire_at` from now;
    `active: false` pauses and `active: true` resumes, as the pause and resume routes do.
    The same validation as on create, applied to the schedule as it would be after the
    change (a window is checked with both its ends). 404 when the schedule does not exist.
    Audited. Needs `eligibility.update`.
    """
    updated, changed = await service.update_schedule(
        scope.session, schedule_id, body, actor=scope.principal, at=scope.runtime.clock.now()
    )
    if changed:
        _signal(background, scope, schedule_id, ChangeKind.UPDATED)
    return updated


@router.delete("/schedules/{schedule_id}", status_code=204, response_class=Response)
async def delete_schedule(
    schedule_id: UUID, scope: Writer, background: BackgroundTasks
) -> Response:
    """Delete a schedule. Its runs keep their history (their `schedule_id` becomes
    null). To stop it for a while without losing the configuration, pause it instead.
    404 when it does not exist. Audited. Needs `eligibility.update`.
    """
    await service.delete_schedule(
        scope.session, schedule_id, actor=scope.principal, at=scope.runtime.clock.now()
    )
    _signal(background, scope, schedule_id, ChangeKind.DELETED)
    return Response(status_code=204)


@router.post("/schedules/{schedule_id}/pause", response_model=ScheduleRead)
async def pause_schedule(
    schedule_id: UUID, scope: Writer, background: BackgroundTasks
) -> ScheduleRead:
    """Pause a schedule: `active` becomes false and `next_fire_at` null, so no new run
    starts; the configuration is kept. Runs already queued or running carry on (cancel
    them on the run's page). Pausing a paused schedule changes nothing. 404 when it does
    not exist. Audited. Needs `eligibility.update`.
    """
    paused, changed = await service.set_active(
        scope.session, schedule_id, False, actor=scope.principal, at=scope.runtime.clock.now()
    )
    if changed:
        _signal(background, scope, schedule_id, ChangeKind.PAUSED)
    return paused


@router.post("/schedules/{schedule_id}/resume", response_model=ScheduleRead)
async def resume_schedule(
    schedule_id: UUID, scope: Writer, background: BackgroundTasks
) -> ScheduleRead:
    """Resume a paused schedule: `active` becomes true and `next_fire_at` the next fire
    time from now (firings missed while paused are not made up). Resuming an active
    schedule changes nothing. 404 when it does not exist. Audited. Needs
    `eligibility.update`.
    """
    resumed, changed = await service.set_active(
        scope.session, schedule_id, True, actor=scope.principal, at=scope.runtime.clock.now()
    )
    if changed:
        _signal(background, scope, schedule_id, ChangeKind.RESUMED)
    return resumed
