"""Sweep runs: the rules for creating, cancelling and reading them, and the hand-off of a
run to the worker.

Creating. Every run starts QUEUED with its scope resolved to absolute service dates
(``create_run``; the supervisor calls it too, at each cron firing). An ad-hoc run gives
its dates relative to the tenant's today or as calendar dates; a rerun copies a run's
absolute scope; a retry (trigger RETRY) gets the FAILED members of its source as its
roster, written at once; a schedule's run-now resolves the schedule's window from now in
the schedule's time zone and refuses while a run of the schedule is QUEUED or RUNNING.

Hand-off. ``enqueue_run`` puts the ``sweep.run`` job into Redis, and it must only be
called after the transaction that inserted the run has committed: a worker must never
be handed a run id whose row it cannot see (and a rolled-back run must never be swept).
If Redis is unreachable at that moment, the run stays QUEUED without a job and the
supervisor's reconciler enqueues it later.

Services only ``flush``: the caller's unit of work commits.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.models import (
    FINAL_RUN_STATUSES,
    MAX_WINDOW_DAYS,
    MemberStatus,
    RunStatus,
    RunTrigger,
    audit_event,
)
from eligibility_sweeps.redis_names import sweep_queue
from eligibility_sweeps.run import repository
from eligibility_sweeps.run.schemas import (
    MemberView,
    RunCounts,
    RunCreate,
    RunMemberRead,
    RunRead,
    RunScope,
)
from rcm_kit.audit import AuditAction, record_audit
from rcm_kit.auth import Principal
from rcm_kit.errors import Conflict, Loc, NotFound, raise_if_any
from rcm_kit.logging import get_logger
from rcm_kit.pagination import Page
from rcm_reference.models import facility, payer
from rcm_reference.repository import existing_ids

log = get_logger(__name__)

ENTITY = "sweep_run"
CANCELLED_BY_OPERATOR = "Cancelled by operator"
RUN_NOT_FOUND = "No sweep run with this sweep_run_id in your organization."

# The arq job that sweeps one run: ``sweep.run(ctx, tenant_id: str, sweep_run_id: str)``.
SWEEP_RUN_JOB = "sweep.run"
# How long the worker must keep the result of ``sweep.run``: not at all (see
# ``run_job_id``). Register it as ``arq.worker.func(sweep_run, name=SWEEP_RUN_JOB,
# keep_result=RUN_JOB_KEEP_RESULT)``.
RUN_JOB_KEEP_RESULT = 0


class RunNotFound(NotFound):
    title = "Sweep run not found"


class ScheduleNotFound(NotFound):
    title = "Schedule not found"


class RunAlreadyFinished(Conflict):
    title = "Run already finished"


class NoFailedMembers(Conflict):
    title = "No failed members"


class ScheduleRunInProgress(Conflict):
    title = "Schedule run in progress"


def window_dates(
    start_days: int, end_days: int, *, at: datetime, timezone: str
) -> tuple[date, date]:
    """The service dates of a window of days relative to ``at``, counted in ``timezone``:
    ``0, 7`` is the calendar day of ``at`` in that zone through 7 days later; ``-14, 0``
    the past 14 days through that day."""
    if at.tzinfo is None:
        raise ValueError("at must be an aware datetime")
    today = at.astimezone(ZoneInfo(timezone)).date()
    return today + timedelta(days=start_days), today + timedelta(days=end_days)


def _window_errors(start: Any, end: Any, end_loc: Loc, start_name: str) -> list[tuple[Loc, str]]:
    """``start`` ≤ ``end`` and a span of at most MAX_WINDOW_DAYS (dates or day numbers)."""
    if start > end:
        return [(end_loc, f"must not be before {start_name}")]
    span = end - start
    days = span.days if isinstance(span, timedelta) else span
    if days > MAX_WINDOW_DAYS:
        return [(end_loc, f"the window spans {days} days; at most {MAX_WINDOW_DAYS}")]
    return []


async def _reference_errors(
    session: AsyncSession, facility_id: UUID | None, payer_ids: list[UUID]
) -> list[tuple[Loc, str]]:
    errors: list[tuple[Loc, str]] = []
    if facility_id is not None and not await existing_ids(session, facility, [facility_id]):
        errors.append((["facility_id"], "no facility with this id in your organization"))
    known = await existing_ids(session, payer, list(payer_ids))
    for index, payer_id in enumerate(payer_ids):
        if payer_id not in known:
            errors.append((["payer_ids", index], "no payer with this id in your organization"))
    return errors


async def create_run(
    session: AsyncSession,
    *,
    name: str,
    trigger: RunTrigger,
    facility_id: UUID | None,
    service_date_from: date,
    service_date_to: date,
    payer_ids: list[UUID],
    schedule_id: UUID | None = None,
    scheduled_for: datetime | None = None,
    retry_of: UUID | None = None,
    at: datetime,
    actor: Principal | str | None = None,
) -> UUID:
    """Insert a QUEUED run over the absolute scope and answer its id (flushed, not
    committed: enqueue its job only after the caller's commit, see ``enqueue_run``).

    422 naming the field for an unknown ``facility_id`` or payer, dates out of order or
    spanning more than 90 days. With ``actor`` (a principal, or a process name such as
    the supervisor's) the creation is audited in the same transaction. A second run of
    one ``(schedule_id, scheduled_for)`` violates ``uq_eligibility_sweep_run_firing``
    (IntegrityError): the supervisor relies on that constraint."""
    errors = _window_errors(
        service_date_from, service_date_to, ["service_date_to"], "service_date_from"
    )
    errors += await _reference_errors(session, facility_id, payer_ids)
    raise_if_any(errors)
    sweep_run_id = await repository.insert_run(
        session,
        {
            "schedule_id": schedule_id,
            "name": name,
            "trigger": trigger.value,
            "status": RunStatus.QUEUED.value,
            "facility_id": facility_id,
            "service_date_from": service_date_from,
            "service_date_to": service_date_to,
            "payer_ids": list(payer_ids),
            "scheduled_for": scheduled_for,
            "retry_of": retry_of,
            "created_at": at,
            "updated_at": at,
        },
    )
    if actor is not None:
        await _audit(
            session,
            AuditAction.CREATE,
            sweep_run_id,
            actor=actor,
            at=at,
            detail={
                "trigger": trigger.value,
                "schedule_id": str(schedule_id) if schedule_id else None,
                "retry_of": str(retry_of) if retry_of else None,
            },
        )
    log.info(
        "sweep.run_created",
        sweep_run_id=str(sweep_run_id),
        trigger=trigger.value,
        schedule_id=str(schedule_id) if schedule_id else None,
    )
    return sweep_run_id


async def create_adhoc_run(
    session: AsyncSession, body: RunCreate, *, timezone: str, actor: Principal, at: datetime
) -> UUID:
    """A MANUAL run from ``POST /runs``: dates relative to today in ``timezone`` (the
    tenant's) or absolute, exactly one of the two forms."""
    relative = {
        "window_start_days": body.window_start_days,
        "window_end_days": body.window_end_days,
    }
    absolute = {
        "service_date_from": body.service_date_from,
        "service_date_to": body.service_date_to,
    }
    given_relative = [name for name, value in relative.items() if value is not None]
    given_absolute = [name for name, value in absolute.items() if value is not None]
    errors: list[tuple[Loc, str]] = []
    either = (
        "give either window_start_days and window_end_days (days from today) or "
        "service_date_from and service_date_to (dates)"
    )
    if given_relative and given_absolute:
        errors += [([name], f"{either}, not both") for name in given_relative + given_absolute]
    elif not given_relative and not given_absolute:
        errors += [([name], f"required: {either}") for name in [*relative, *absolute]]
    else:
        form = relative if given_relative else absolute
        errors += [
            ([name], f"required with {' and '.join(n for n in form if n != name)}")
            for name, value in form.items()
            if value is None
        ]
    dates: tuple[date, date] | None = None
    if body.window_start_days is not None and body.window_end_days is not None:
        errors += _window_errors(
            body.window_start_days, body.window_end_days, ["window_end_days"], "window_start_days"
        )
        dates = window_dates(body.window_start_days, body.window_end_days, at=at, timezone=timezone)
    elif body.service_date_from is not None and body.service_date_to is not None:
        errors += _window_errors(
            body.service_date_from, body.service_date_to, ["service_date_to"], "service_date_from"
        )
        dates = body.service_date_from, body.service_date_to
    errors += await _reference_errors(session, body.facility_id, body.payer_ids)
    raise_if_any(errors)
    assert dates is not None  # no error means exactly one complete form
    date_from, date_to = dates
    return await create_run(
        session,
        name=body.name,
        trigger=RunTrigger.MANUAL,
        facility_id=body.facility_id,
        service_date_from=date_from,
        service_date_to=date_to,
        payer_ids=body.payer_ids,
        at=at,
        actor=actor,
    )


async def _source(session: AsyncSession, sweep_run_id: UUID) -> Any:
    row = await repository.get_run(session, sweep_run_id)
    if row is None:
        raise RunNotFound(RUN_NOT_FOUND)
    return row


async def rerun(
    session: AsyncSession, sweep_run_id: UUID, *, actor: Principal, at: datetime
) -> UUID:
    """A new MANUAL run with the same absolute scope (and schedule, if any) as the run."""
    source = await _source(session, sweep_run_id)
    return await create_run(
        session,
        name=source.name,
        trigger=RunTrigger.MANUAL,
        facility_id=source.facility_id,
        service_date_from=source.service_date_from,
        service_date_to=source.service_date_to,
        payer_ids=list(source.payer_ids),
        schedule_id=source.schedule_id,
        at=at,
        actor=actor,
    )


async def retry_failed(
    session: AsyncSession, sweep_run_id: UUID, *, actor: Principal, at: datetime
) -> UUID:
    """A RETRY run over the run's FAILED members only.

    Its roster is known now, so its member rows are written here, QUEUED with the
    source's service dates, and ``roster_at`` is set: the worker sends them without a
    roster query. 409 when the run has no FAILED member (nothing is created)."""
    source = await _source(session, sweep_run_id)
    new_id = await create_run(
        session,
        name=source.name,
        trigger=RunTrigger.RETRY,
        facility_id=source.facility_id,
        service_date_from=source.service_date_from,
        service_date_to=source.service_date_to,
        payer_ids=list(source.payer_ids),
        schedule_id=source.schedule_id,
        retry_of=sweep_run_id,
        at=at,
        actor=actor,
    )
    # One INSERT ... SELECT decides, so a member whose late 271 lands meanwhile is
    # either retried or not, never half; none at all rolls the new run back.
    copied = await repository.copy_failed_members(
        session, source_run_id=sweep_run_id, new_run_id=new_id, at=at
    )
    if copied == 0:
        raise NoFailedMembers(
            "The run has no FAILED member to retry.", sweep_run_id=str(sweep_run_id)
        )
    await repository.mark_roster_written(session, new_id, at=at)
    return new_id


async def run_schedule_now(
    session: AsyncSession, schedule_id: UUID, *, actor: Principal, at: datetime
) -> UUID:
    """A MANUAL run of the schedule's name and scope, its window counted from ``at`` in the
    schedule's time zone. Paused schedules may be run by hand. 404 for an unknown
    schedule; 409 while a run of the schedule is QUEUED or RUNNING."""
    schedule = await repository.lock_schedule(session, schedule_id)
    if schedule is None:
        raise ScheduleNotFound("No schedule with this schedule_id in your organization.")
    live = await repository.live_run_of_schedule(session, schedule_id)
    if live is not None:
        raise ScheduleRunInProgress(
            f"Run {live} of this schedule is still QUEUED or RUNNING; cancel it or wait for "
            "it to finish.",
            sweep_run_id=str(live),
        )
    date_from, date_to = window_dates(
        schedule.window_start_days,
        schedule.window_end_days,
        at=at,
        timezone=schedule.timezone,
    )
    return await create_run(
        session,
        name=schedule.name,
        trigger=RunTrigger.MANUAL,
        facility_id=schedule.facility_id,
        service_date_from=date_from,
        service_date_to=date_to,
        payer_ids=list(schedule.payer_ids),
        schedule_id=schedule_id,
        at=at,
        actor=actor,
    )


async def cancel_run(
    session: AsyncSession, sweep_run_id: UUID, *, actor: Principal, at: datetime
) -> RunRead:
    """QUEUED members become SKIPPED ``Cancelled by operator`` and the run CANCELLED with
    ``completed_at``, under the run's row lock so no worker changes its status meanwhile.
    Members already SUBMITTED keep going and still become RECEIVED or FAILED. 409 when
    the run is already COMPLETED, CANCELLED or FAILED."""
    locked = await repository.lock_run(session, sweep_run_id)
    if locked is None:
        raise RunNotFound(RUN_NOT_FOUND)
    if locked.status in FINAL_RUN_STATUSES:
        raise RunAlreadyFinished(
            f"The run is already {locked.status}; a finished run cannot be cancelled.",
            run_status=locked.status,
        )
    skipped = await repository.skip_queued_members(
        session, sweep_run_id, CANCELLED_BY_OPERATOR, at=at
    )
    await repository.set_run_status(
        session, sweep_run_id, RunStatus.CANCELLED, at=at, completed_at=at
    )
    await _audit(
        session,
        AuditAction.UPDATE,
        sweep_run_id,
        actor=actor,
        at=at,
        detail={"status": RunStatus.CANCELLED.value, "from": locked.status, "skipped": skipped},
    )
    log.info("sweep.run_cancelled", sweep_run_id=str(sweep_run_id), skipped=skipped)
    return await get_run(session, sweep_run_id)


def run_read(row: Any) -> RunRead:
    return RunRead(
        sweep_run_id=row.sweep_run_id,
        schedule_id=row.schedule_id,
        name=row.name,
        trigger=row.trigger,
        status=row.status,
        scope=RunScope(
            facility_id=row.facility_id,
            service_date_from=row.service_date_from,
            service_date_to=row.service_date_to,
            payer_ids=list(row.payer_ids),
        ),
        counts=RunCounts(
            total=row.total,
            queued=row.queued,
            submitted=row.submitted,
            received=row.received,
            failed=row.failed,
            skipped=row.skipped,
            anomalies=row.anomalies,
        ),
        retry_of=row.retry_of,
        scheduled_for=row.scheduled_for,
        created_at=row.created_at,
        started_at=row.started_at,
        completed_at=row.completed_at,
        error=row.error,
    )


async def get_run(session: AsyncSession, sweep_run_id: UUID) -> RunRead:
    row = await repository.get_run(session, sweep_run_id)
    if row is None:
        raise RunNotFound(RUN_NOT_FOUND)
    return run_read(row)


async def list_runs(
    session: AsyncSession,
    *,
    status: RunStatus | None,
    schedule_id: UUID | None,
    cursor: str | None,
    limit: int,
) -> Page[RunRead]:
    rows, next_cursor = await repository.list_runs(
        session, status=status, schedule_id=schedule_id, cursor=cursor, limit=limit
    )
    return Page(items=[run_read(row) for row in rows], next_cursor=next_cursor)


async def list_members(
    session: AsyncSession,
    sweep_run_id: UUID,
    *,
    view: MemberView,
    status: MemberStatus | None,
    cursor: str | None,
    limit: int,
    actor: Principal,
    at: datetime,
) -> Page[RunMemberRead]:
    """A page of the run's members (patient data: every read is audited)."""
    if await repository.get_run(session, sweep_run_id) is None:
        raise RunNotFound(RUN_NOT_FOUND)
    rows, next_cursor = await repository.list_members(
        session, sweep_run_id, view=view, status=status, cursor=cursor, limit=limit
    )
    await record_audit(
        session,
        audit_event,
        actor=actor,
        action=AuditAction.READ,
        entity_type="sweep_run_members",
        entity_id=sweep_run_id,
        at=at,
        detail={"view": view, "status": status.value if status else None, "returned": len(rows)},
    )
    return Page(
        items=[
            RunMemberRead(
                member_id=row.member_id,
                member_name=f"{row.last_name}, {row.first_name}",
                service_date=row.service_date,
                status=row.status,
                failure_reason=row.failure_reason,
                coverage_status=row.coverage_status,
                anomalies=list(row.anomalies),
                check_ids=list(row.check_ids),
                updated_at=row.updated_at,
            )
            for row in rows
        ],
        next_cursor=next_cursor,
    )


async def _audit(
    session: AsyncSession,
    action: AuditAction,
    sweep_run_id: UUID,
    *,
    actor: Principal | str,
    at: datetime,
    detail: dict[str, Any],
) -> None:
    await record_audit(
        session,
        audit_event,
        actor=actor,
        action=action,
        entity_type=ENTITY,
        entity_id=sweep_run_id,
        at=at,
        detail=detail,
    )


def open_arq_pool(redis_url: str, database_url: str) -> ArqRedis:
    """An arq client whose jobs go to this deployment's queue (``redis_names``);
    connects on first use; close it with ``aclose``."""
    pool: ArqRedis = ArqRedis.from_url(redis_url)
    pool.default_queue_name = sweep_queue(database_url)
    return pool


def run_job_id(tenant_id: UUID, sweep_run_id: UUID) -> str:
    """The arq job id of a run's ``sweep.run`` job: ``sweep.run:<tenant_id>:<sweep_run_id>``.

    Deterministic, so every enqueue of one run (the API after its commit, the
    supervisor's reconciler, a retried request) names the same job, and arq refuses the
    duplicates: ``enqueue_job`` answers None while ``arq:job:<id>`` exists (the job is
    queued, running, or waiting to be retried after its worker died) or while
    ``arq:result:<id>`` does (its result is kept, by default for 3600 s after it ends).

    The second rule is the caveat: with a kept result the id could not be enqueued
    again for an hour, so a run the reconciler finds QUEUED or RUNNING without a live
    job (its job was lost, or ended before the run did) could not be resumed. The
    worker therefore registers ``sweep.run`` with ``keep_result=0``
    (``RUN_JOB_KEEP_RESULT``): the result is worthless anyway (a run's state is in the
    database), and the id is free again the moment the job ends. We prefer that over an
    attempt number in the id, which would need a counter stored somewhere and would let
    two reconcilers enqueue two live jobs for one run. The tenant id in the id lets an
    operator (and the tests) find a tenant's jobs with ``SCAN arq:job:sweep.run:<tenant>:*``.
    """
    return f"{SWEEP_RUN_JOB}:{tenant_id}:{sweep_run_id}"


async def enqueue_run(arq_pool: ArqRedis, tenant_id: UUID, sweep_run_id: UUID) -> bool:
    """Enqueue ``sweep.run(tenant_id, sweep_run_id)`` (both as strings, so any serializer
    carries them) under ``run_job_id``. Call it only after the run's row has committed.
    True when enqueued, False when a job with that id is still live (nothing to do).
    Redis errors propagate: the run stays QUEUED and the reconciler enqueues it later."""
    job = await arq_pool.enqueue_job(
        SWEEP_RUN_JOB,
        str(tenant_id),
        str(sweep_run_id),
        _job_id=run_job_id(tenant_id, sweep_run_id),
    )
    log.info(
        "sweep.run_enqueued" if job is not None else "sweep.run_already_enqueued",
        tenant_id=str(tenant_id),
        sweep_run_id=str(sweep_run_id),
    )
    return job is not None
