"""Sweep runs for the SPA's Sweeps tab: start one (ad hoc, rerun, retry the failed rows,
a schedule's run-now), watch its live counts, cancel it, and triage its members.

A run-creating POST commits the run in a transaction of its own and only then hands its
job to the worker, so a worker never sees a run id whose row did not commit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from uuid import UUID

from arq.connections import ArqRedis
from fastapi import APIRouter, Header, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps import idempotency
from eligibility_sweeps.models import MemberStatus, RunStatus
from eligibility_sweeps.run import service
from eligibility_sweeps.run.schemas import MemberView, RunCreate, RunMemberRead, RunRead
from rcm_kit.auth import ELIGIBILITY_READ, ELIGIBILITY_UPDATE
from rcm_kit.logging import get_logger
from rcm_kit.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from rcm_kit.service import TenantScope, tenant_scope

log = get_logger(__name__)

router = APIRouter(prefix="/api/v1/eligibility/sweeps", tags=["sweep runs"])
Reader = Annotated[TenantScope, tenant_scope(ELIGIBILITY_READ)]
Writer = Annotated[TenantScope, tenant_scope(ELIGIBILITY_UPDATE)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Retry-safe: the same key within 24 hours returns the first answer and "
        "creates no second run.",
    ),
]
# Where the app's start-up puts the arq client (``Runtime.extras``).
ARQ_POOL = "arq"


def arq_pool_of(scope: TenantScope) -> ArqRedis:
    pool: ArqRedis = scope.runtime.extras[ARQ_POOL]
    return pool


async def _start_run(
    scope: TenantScope,
    *,
    route: str,
    request: Any,
    idempotency_key: str | None,
    create: Callable[[AsyncSession], Awaitable[UUID]],
) -> JSONResponse:
    """Create a run in its own committed transaction (with the Idempotency-Key's answer
    stored in it), then enqueue its job: 202 with the run."""
    directory, tenant, clock = scope.runtime.directory, scope.tenant, scope.runtime.clock
    reservation = None
    if idempotency_key is not None:
        async with directory.transaction(tenant) as session:
            reserved = await idempotency.reserve(
                session,
                scope=f"{scope.principal.subject}:{route}",
                key=idempotency_key,
                digest=idempotency.request_digest(request),
                now=clock.now(),
            )
        if isinstance(reserved, idempotency.Replay):
            return JSONResponse(reserved.body, status_code=reserved.status_code)
        reservation = reserved
    try:
        async with directory.transaction(tenant) as session:
            sweep_run_id = await create(session)
            answer = jsonable_encoder(await service.get_run(session, sweep_run_id))
            if reservation is not None:
                await idempotency.remember(session, reservation, status_code=202, body=answer)
    except BaseException:
        if reservation is not None:
            async with directory.transaction(tenant) as session:
                await idempotency.forget(session, reservation)
        raise
    try:
        await service.enqueue_run(arq_pool_of(scope), tenant.tenant_id, sweep_run_id)
    except (RedisError, OSError) as error:
        # The run is stored and stays QUEUED; the supervisor's reconciler enqueues it.
        # Failing the request now would invite a retry that creates a second run.
        log.warning(
            "sweep.enqueue_failed",
            sweep_run_id=str(sweep_run_id),
            error=type(error).__name__,
        )
    return JSONResponse(answer, status_code=202)


@router.get("/runs", response_model=Page[RunRead])
async def list_runs(
    scope: Reader,
    status: Annotated[RunStatus | None, Query(description="Only runs in this status.")] = None,
    schedule_id: Annotated[UUID | None, Query(description="Only runs of this schedule.")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[RunRead]:
    """Sweep runs, newest first, with live counts. Needs `eligibility.read`."""
    return await service.list_runs(
        scope.session, status=status, schedule_id=schedule_id, cursor=cursor, limit=limit
    )


@router.post("/runs", response_model=RunRead, status_code=202)
async def create_run(
    body: RunCreate, scope: Writer, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Start an ad-hoc sweep: 202 with the run, QUEUED; the worker takes it from there.

    The service dates are either `window_start_days` and `window_end_days`, days relative
    to today in your organization's time zone (`0` and `7`: today through a week from
    today; `-14` and `0`: the past two weeks), or `service_date_from` and
    `service_date_to` as calendar dates; exactly one of the two forms. `facility_id`
    null sweeps every facility; empty `payer_ids` every active coverage.

    422 naming every bad field: both forms or neither, half a form, a start after its
    end, a window over 90 days, an unknown facility or payer. Audited. Needs
    `eligibility.update`.
    """
    return await _start_run(
        scope,
        route="POST /eligibility/sweeps/runs",
        request=body.model_dump(mode="json"),
        idempotency_key=idempotency_key,
        create=lambda session: service.create_adhoc_run(
            session,
            body,
            timezone=scope.tenant.timezone,
            actor=scope.principal,
            at=scope.runtime.clock.now(),
        ),
    )


@router.get("/runs/{sweep_run_id}", response_model=RunRead)
async def get_run(sweep_run_id: UUID, scope: Reader) -> RunRead:
    """One run with its live counts: poll it to show progress. 404 when it does not
    exist in your organization. Needs `eligibility.read`."""
    return await service.get_run(scope.session, sweep_run_id)


@router.post("/runs/{sweep_run_id}/cancel", response_model=RunRead)
async def cancel_run(sweep_run_id: UUID, scope: Writer) -> RunRead:
    """Cancel a QUEUED or RUNNING run: its QUEUED members become SKIPPED with
    `Cancelled by operator` and the run CANCELLED with `completed_at`. 270s already
    submitted are not revoked: those members still become RECEIVED (or FAILED) when
    their answer lands. 409 when the run is already COMPLETED, CANCELLED or FAILED; 404
    when it does not exist. Audited. Needs `eligibility.update`."""
    return await service.cancel_run(
        scope.session, sweep_run_id, actor=scope.principal, at=scope.runtime.clock.now()
    )


@router.post("/runs/{sweep_run_id}/rerun", response_model=RunRead, status_code=202)
async def rerun(
    sweep_run_id: UUID, scope: Writer, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Run again with the same scope: 202 with a new MANUAL run over the same service
    dates, facility and payers (the dates are not moved to today). 404 when the run does
    not exist. Audited. Needs `eligibility.update`."""
    return await _start_run(
        scope,
        route=f"POST /eligibility/sweeps/runs/{sweep_run_id}/rerun",
        request={},
        idempotency_key=idempotency_key,
        create=lambda session: service.rerun(
            session, sweep_run_id, actor=scope.principal, at=scope.runtime.clock.now()
        ),
    )


@router.post(
    "/runs/{sweep_run_id}/retry-failed",
    response_model=RunRead,
    status_code=202,
)
async def retry_failed(
    sweep_run_id: UUID, scope: Writer, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Retry the run's FAILED members: 202 with a new run (`trigger: RETRY`, `retry_of`
    the run) whose members are exactly those, QUEUED, with their service dates. 409
    when the run has no FAILED member; 404 when it does not exist. Audited. Needs
    `eligibility.update`."""
    return await _start_run(
        scope,
        route=f"POST /eligibility/sweeps/runs/{sweep_run_id}/retry-failed",
        request={},
        idempotency_key=idempotency_key,
        create=lambda session: service.retry_failed(
            session, sweep_run_id, actor=scope.principal, at=scope.runtime.clock.now()
        ),
    )


@router.post(
    "/schedules/{schedule_id}/run-now",
    response_model=RunRead,
    status_code=202,
    tags=["sweep schedules"],
)
async def run_schedule_now(
    schedule_id: UUID, scope: Writer, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Run a schedule now, without waiting for its cron: 202 with a new MANUAL run of the
    schedule's name, facility and payers, its window counted from now in the schedule's
    time zone. Works on a paused schedule too. 409 while a run of the schedule is still
    QUEUED or RUNNING (its `sweep_run_id` is in the answer); 404 when the schedule does
    not exist. Audited. Needs `eligibility.update`."""
    return await _start_run(
        scope,
        route=f"POST /eligibility/sweeps/schedules/{schedule_id}/run-now",
        request={},
        idempotency_key=idempotency_key,
        create=lambda session: service.run_schedule_now(
            session, schedule_id, actor=scope.principal, at=scope.runtime.clock.now()
        ),
    )


@router.get("/runs/{sweep_run_id}/members", response_model=Page[RunMemberRead])
async def list_run_members(
    sweep_run_id: UUID,
    scope: Reader,
    view: Annotated[
        MemberView,
        Query(
            description="`all` every member; `exceptions` the FAILED and SKIPPED rows; "
            "`anomalies` the RECEIVED rows whose 271 shows an anomaly."
        ),
    ] = "all",
    status: Annotated[
        MemberStatus | None, Query(description="Narrows the view to this status.")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[RunMemberRead]:
    """The run's members by last name, first name, then member id, with each one's
    status, failure reason, coverage result, anomalies and checks. 404 when the run does
    not exist. Needs `eligibility.read`; every read is recorded in the audit trail."""
    return await service.list_members(
        scope.session,
        sweep_run_id,
        view=view,
        status=status,
        cursor=cursor,
        limit=limit,
        actor=scope.principal,
        at=scope.runtime.clock.now(),
    )
