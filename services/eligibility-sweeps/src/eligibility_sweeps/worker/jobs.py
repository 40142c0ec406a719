"""The arq jobs of a sweep and the long-lived parts they share.

Two jobs, both short, both safe to run again at any time:

``sweep.run(ctx, tenant_id, sweep_run_id)`` (id ``sweep.run:<tenant>:<run>``, from
``run.service.run_job_id``) drives one run. Each execution looks at the run once and
then either ends (the run is final) or re-queues itself with ``arq.Retry`` for
``SWEEP_TICK_SECONDS`` later, so its job stays live under the same id for as long as the
run is QUEUED or RUNNING (the supervisor's reconciler re-enqueues a run only when that
id has no live job). One look:

1. COMPLETED or FAILED: give back its slot, end. CANCELLED: give back its slot; expire
   stale claims; end once no member is SUBMITTED (late 271s still land meanwhile).
2. While it has something to send (QUEUED, roster not written, or members QUEUED): take
   or renew its slot (``gate``); no slot yet → stay QUEUED, ask again in a second.
   QUEUED → RUNNING (``started_at``); the roster, once, with retries (FAILED with
   ``error`` when they run out); make sure each of its send jobs is queued.
   Nothing left to send: give the slot back (a run awaiting late 271s blocks no one).
3. Housekeeping: stale claims become FAILED ``Outcome unknown: …``, and members whose
   checks were all settled elsewhere get their outcome.
4. COMPLETED when no member is QUEUED or SUBMITTED; else look again in a tick.

``sweep.send(ctx, tenant_id, sweep_run_id, lane)`` (id ``sweep.send:<tenant>:<run>:<lane>``,
lanes ``0 .. ceil(SWEEP_MEMBER_CONCURRENCY / SWEEP_LANE_CONCURRENCY) - 1``) sends members
of one run, at most ``lane_width`` at a time (``sender.Lane``), for
``SWEEP_SEND_JOB_SECONDS``, then re-queues itself at the back of the queue (``Retry``):
lanes of every running sweep take turns on the workers' job slots, so a huge sweep never
holds a worker for an hour and a small sweep's lanes get their turn within one window.
A lane's id is unique, so a sweep never has more than ``SWEEP_MEMBER_CONCURRENCY``
members in flight however many workers there are (1 = strictly serial), and the lanes
spread over the worker processes that poll the queue: a process already sending for a run
hands each further lane of it back to the queue a few times per window
(``WorkerRuntime.offer``), since arq gives one process every job it reads in a poll. A lane that finds nothing to claim
checks whether the run is complete (after its own last commit) and ends.

arq caveats, and how they are met: ``job_timeout`` (``SWEEP_JOB_TIMEOUT_SECONDS``) is
never reached, since a lane claims for a bounded window and every send and retry ends
before the job's deadline; a job of a dead worker runs again once its in-progress key
expires (the timeout + 10 s), and everything it does is idempotent (claims are
conditional, the roster is ``ON CONFLICT DO NOTHING``, completion conditional on
RUNNING); ``keep_result=0`` frees a job id the moment the job ends; ``Retry`` counts as a
try, so both jobs allow ``MAX_TRIES`` (an exception still ends a job at once).
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix
from arq.worker import Retry, Worker, func
from redis.asyncio import Redis
from sqlalchemy.exc import DBAPIError

from eligibility_sweeps.check.pipeline import CheckPipeline
from eligibility_sweeps.models import RunStatus
from eligibility_sweeps.redis_names import gate_prefix
from eligibility_sweeps.run.service import (
    RUN_JOB_KEEP_RESULT,
    SWEEP_RUN_JOB,
    open_arq_pool,
)
from eligibility_sweeps.trading_partner.credentials import SecretBox
from eligibility_sweeps.worker import repository
from eligibility_sweeps.worker.gate import SweepGate
from eligibility_sweeps.worker.roster import write_roster
from eligibility_sweeps.worker.sender import MEMBERS, ClientPool, Lane, RetryPolicy
from eligibility_sweeps.worker.settings import WorkerSettings
from rcm_kit.clock import Clock, SystemClock
from rcm_kit.db import TenantConnectionResolver, create_engine
from rcm_kit.logging import bind_context, get_logger
from rcm_kit.tenancy import Tenant, TenantDirectory

log = get_logger(__name__)

PROCESS = "sweeps-worker"
RUNTIME = "sweeps"
SWEEP_SEND_JOB = "sweep.send"
# ``Retry`` is how both jobs continue, and each one counts as a try.
MAX_TRIES = 1_000_000
# A Retry with no delay keeps the job's old score (the front of the queue); a
# millisecond puts it at the back, behind every job queued meanwhile.
BACK_OF_THE_QUEUE = 0.001
# A suspended tenant's runs wait, and are looked at again this often.
SUSPENDED_TENANT_SECONDS = 60.0
# A lane stops sending this long before arq's job timeout.
DEADLINE_MARGIN_SECONDS = 5.0
# A lane offered to the other workers comes back to the queue after LANE_OFFER_SECONDS
# plus a tenth of a second per lane number (mod LANE_OFFER_STAGGER), so lanes return one
# by one, each to whichever process polls first; at most LANE_OFFERS times a window.
LANE_OFFER_SECONDS = 0.2
LANE_OFFER_STAGGER = 4
LANE_OFFERS = 3


def send_job_id(tenant_id: UUID, sweep_run_id: UUID, lane: int) -> str:
    """``sweep.send:<tenant_id>:<sweep_run_id>:<lane>``."""
    return f"{SWEEP_SEND_JOB}:{tenant_id}:{sweep_run_id}:{lane}"


@dataclass
class WorkerRuntime:
    """The long-lived parts of one worker process, shared by its jobs (``ctx["sweeps"]``)."""

    settings: WorkerSettings
    directory: TenantDirectory
    redis: Redis
    arq: ArqRedis
    pipeline: CheckPipeline
    gate: SweepGate
    clients: ClientPool
    clock: Clock
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    lanes_running: int = 0
    lanes_by_run: collections.Counter[UUID] = field(default_factory=collections.Counter)
    offered: dict[tuple[UUID, int], tuple[float, int]] = field(default_factory=dict)
    """Lanes this process offered to the other workers: until when, how many times."""
    claimed_members: int = 0
    """Members this process has claimed since it started."""

    def offer(self, run_id: UUID, lane: int) -> bool:
        """Whether to hand ``lane`` back to the queue for another worker process first:
        arq hands a worker every job it reads in one poll, so one process would take all
        of a sweep's lanes while the others idle. A process already sending for the run
        offers a further lane up to ``LANE_OFFERS`` times per window, then runs it (with
        no other worker, that costs a lane about a second per window)."""
        if not self.lanes_by_run[run_id]:
            return False
        now = time.monotonic()
        until, times = self.offered.get((run_id, lane), (0.0, 0))
        if until <= now:
            until, times = now + self.settings.SWEEP_SEND_JOB_SECONDS, 0
        if times >= LANE_OFFERS:
            return False
        self.offered = {k: v for k, v in self.offered.items() if v[0] > now}
        self.offered[(run_id, lane)] = (until, times + 1)
        return True

    @classmethod
    def build(cls, settings: WorkerSettings, *, clock: Clock | None = None) -> WorkerRuntime:
        clock = clock or SystemClock()
        master = create_engine(settings.DATABASE_URL, pool_size=2, app_name=PROCESS)
        resolver = TenantConnectionResolver(
            pool_size=settings.TENANT_POOL_SIZE,
            max_engines=settings.MAX_TENANT_ENGINES,
            app_name=PROCESS,
        )
        redis = Redis.from_url(settings.REDIS_URL)
        # The checks pipeline's own client; lanes send through ``clients``.
        http = httpx.AsyncClient(follow_redirects=False)
        box = SecretBox(settings.SECRETS_KEY) if settings.SECRETS_KEY is not None else None
        poll = min(1.0, settings.SWEEP_TICK_SECONDS)
        return cls(
            settings=settings,
            directory=TenantDirectory(master, resolver, settings.TENANT_CACHE_SECONDS),
            redis=redis,
            arq=open_arq_pool(settings.REDIS_URL, settings.DATABASE_URL),
            pipeline=CheckPipeline(
                redis=redis,
                http=http,
                box=box,
                clock=clock,
                breaker_cooldown_seconds=settings.PARTNER_BREAKER_COOLDOWN_SECONDS,
                max_wait_seconds=settings.PARTNER_RATE_WAIT_SECONDS,
            ),
            gate=SweepGate(
                redis,
                limit=settings.INGEST_QUEUE_CONCURRENCY,
                lease_seconds=settings.SWEEP_SLOT_LEASE_SECONDS,
                stale_seconds=max(10.0, 5 * poll),
                prefix=gate_prefix(settings.DATABASE_URL),
            ),
            clients=ClientPool(settings.SWEEP_LANE_CONCURRENCY),
            clock=clock,
        )

    @property
    def slot_poll_seconds(self) -> float:
        """How often a run waiting for a slot asks again."""
        return min(1.0, self.settings.SWEEP_TICK_SECONDS)

    async def close(self) -> None:
        await self.clients.aclose()
        await self.pipeline.http.aclose()
        await self.directory.dispose()
        await self.redis.aclose()
        await self.arq.aclose()


def create_worker(runtime: WorkerRuntime, *, burst: bool = False) -> Worker:
    """The arq worker of ``runtime``. Signals are the process's to handle (``main``)."""
    settings = runtime.settings
    timeout = settings.SWEEP_JOB_TIMEOUT_SECONDS
    return Worker(
        functions=[
            func(
                sweep_run,
                name=SWEEP_RUN_JOB,
                keep_result=RUN_JOB_KEEP_RESULT,
                timeout=timeout,
                max_tries=MAX_TRIES,
            ),
            func(
                sweep_send, name=SWEEP_SEND_JOB, keep_result=0, timeout=timeout, max_tries=MAX_TRIES
            ),
        ],
        queue_name=runtime.arq.default_queue_name,
        redis_pool=runtime.arq,
        burst=burst,
        handle_signals=False,
        max_jobs=settings.SWEEPS_WORKER_MAX_JOBS,
        job_timeout=timeout,
        keep_result=0,
        max_tries=MAX_TRIES,
        poll_delay=settings.SWEEPS_WORKER_POLL_SECONDS,
        ctx={RUNTIME: runtime},
        log_results=False,
    )


async def _tenant(runtime: WorkerRuntime, tenant_id: UUID) -> Tenant | None:
    tenant = await runtime.directory.get(tenant_id)
    if tenant is None:
        log.warning("sweep.unknown_tenant")
        return None
    if not tenant.active:
        raise Retry(defer=SUSPENDED_TENANT_SECONDS)
    return tenant


async def sweep_run(ctx: dict[str, Any], tenant_id: str, sweep_run_id: str) -> str:
    """Drive one run (see the module text); the run's status after this look."""
    runtime: WorkerRuntime = ctx[RUNTIME]
    bind_context(tenant_id=tenant_id, sweep_run_id=sweep_run_id)
    tenant = await _tenant(runtime, UUID(tenant_id))
    if tenant is None:
        return "unknown tenant"
    return await _Driver(runtime, tenant, UUID(sweep_run_id)).look()


@dataclass
class _Driver:
    runtime: WorkerRuntime
    tenant: Tenant
    sweep_run_id: UUID

    @property
    def settings(self) -> WorkerSettings:
        return self.runtime.settings

    def transaction(self) -> Any:
        return self.runtime.directory.transaction(self.tenant)

    async def _release(self) -> None:
        await self.runtime.gate.release(self.tenant.tenant_id, self.sweep_run_id)

    async def look(self) -> str:
        async with self.transaction() as session:
            run = await repository.get_run(session, self.sweep_run_id)
        if run is None:
            log.warning("sweep.run_not_found")
            return "not found"
        status = RunStatus(run.status)
        if status in (RunStatus.COMPLETED, RunStatus.FAILED):
            await self._release()
            return status.value
        if status is RunStatus.CANCELLED:
            await self._release()
            if await self._housekeeping():
                raise Retry(defer=self.settings.SWEEP_TICK_SECONDS)
            return status.value
        queued = status is RunStatus.QUEUED or run.roster_at is None
        if not queued:
            async with self.transaction() as session:
                queued, _ = await repository.live_members(session, self.sweep_run_id)
        if queued:
            if not await self.runtime.gate.acquire(self.tenant.tenant_id, self.sweep_run_id):
                raise Retry(defer=self.runtime.slot_poll_seconds)
            if status is RunStatus.QUEUED:
                async with self.transaction() as session:
                    started = await repository.start_run(
                        session, self.sweep_run_id, at=self.runtime.clock.now()
                    )
                if not started:  # cancelled meanwhile: look again from the top
                    raise Retry(defer=BACK_OF_THE_QUEUE)
                log.info("sweep.run_started", trigger=run.trigger)
            if run.roster_at is None and not await self._roster(run):
                await self._release()
                return RunStatus.FAILED.value
            await self._ensure_lanes()
        else:
            await self._release()
        await self._housekeeping()
        async with self.transaction() as session:
            completed = await repository.complete_if_done(
                session, self.sweep_run_id, at=self.runtime.clock.now()
            )
        if completed:
            await self._release()
            log.info("sweep.run_completed")
            return RunStatus.COMPLETED.value
        raise Retry(defer=self.settings.SWEEP_TICK_SECONDS)

    async def _roster(self, run: Any) -> bool:
        """Write the roster, retrying errors; False when the run was FAILED instead."""
        attempts = self.settings.SWEEP_ROSTER_ATTEMPTS
        error: BaseException | None = None
        for attempt in range(1, attempts + 1):
            started = time.perf_counter()
            try:
                async with self.transaction() as session:
                    written = await write_roster(session, run, at=self.runtime.clock.now())
            except (DBAPIError, OSError, TimeoutError) as failure:
                error = failure
                log.warning("sweep.roster_failed", attempt=attempt, error=type(failure).__name__)
                if attempt < attempts:
                    await asyncio.sleep(
                        self.settings.SWEEP_ROSTER_RETRY_SECONDS * 2 ** (attempt - 1)
                    )
                continue
            if written.written:
                log.info(
                    "sweep.roster_written",
                    members=written.rows,
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                )
            return True
        assert error is not None
        reason = f"Roster query failed after {attempts} attempts: {_describe(error)}"
        async with self.transaction() as session:
            await repository.fail_run(
                session, self.sweep_run_id, reason, at=self.runtime.clock.now()
            )
        log.error("sweep.run_failed", error=type(error).__name__)
        return False

    async def _ensure_lanes(self) -> None:
        """Queue each lane's send job unless it is live already (one round trip to look)."""
        tenant_id = self.tenant.tenant_id
        ids = [
            send_job_id(tenant_id, self.sweep_run_id, lane) for lane in range(self.settings.lanes)
        ]
        async with self.runtime.arq.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.exists(job_key_prefix + job_id, in_progress_key_prefix + job_id)
            live = await pipe.execute()
        for lane, (job_id, count) in enumerate(zip(ids, live, strict=True)):
            if int(count):
                continue
            await self.runtime.arq.enqueue_job(
                SWEEP_SEND_JOB,
                str(tenant_id),
                str(self.sweep_run_id),
                lane,
                _job_id=job_id,
            )

    async def _housekeeping(self) -> bool:
        """Stale claims and members settled elsewhere; whether any member is SUBMITTED."""
        now = self.runtime.clock.now()
        settings = self.settings
        async with self.transaction() as session:
            expired = await repository.expire_claims(
                session,
                self.sweep_run_id,
                at=now,
                claim_cutoff=now - timedelta(seconds=settings.SWEEP_CLAIM_TIMEOUT_SECONDS),
                answer_cutoff=now - timedelta(seconds=settings.SWEEP_ANSWER_TIMEOUT_SECONDS),
                answer_timeout_seconds=settings.SWEEP_ANSWER_TIMEOUT_SECONDS,
            )
            settled = await repository.refresh_members(session, self.sweep_run_id, None, at=now)
            _, submitted = await repository.live_members(session, self.sweep_run_id)
        if expired:
            log.warning("sweep.claims_expired", members=len(expired))
        for row in settled:
            MEMBERS.labels(row.status).inc()
        return submitted


async def sweep_send(ctx: dict[str, Any], tenant_id: str, sweep_run_id: str, lane: int) -> str:
    """Send members of one run for one window (see the module text)."""
    runtime: WorkerRuntime = ctx[RUNTIME]
    entered = time.monotonic()
    if runtime.stopping.is_set():
        raise Retry(defer=BACK_OF_THE_QUEUE)  # another worker takes it
    run_id = UUID(sweep_run_id)
    # Decided before the first await: the lanes of one poll start together.
    if runtime.offer(run_id, lane):
        raise Retry(defer=LANE_OFFER_SECONDS + 0.1 * (lane % LANE_OFFER_STAGGER))
    runtime.lanes_by_run[run_id] += 1
    try:
        return await _send_window(runtime, UUID(tenant_id), run_id, lane, entered)
    finally:
        runtime.lanes_by_run[run_id] -= 1
        if not runtime.lanes_by_run[run_id]:
            del runtime.lanes_by_run[run_id]


async def _send_window(
    runtime: WorkerRuntime, tenant_id: UUID, run_id: UUID, lane: int, entered: float
) -> str:
    settings = runtime.settings
    bind_context(tenant_id=str(tenant_id), sweep_run_id=str(run_id), lane=lane)
    tenant = await _tenant(runtime, tenant_id)
    if tenant is None:
        return "unknown tenant"
    async with runtime.directory.transaction(tenant) as session:
        run = await repository.get_run(session, run_id)
    if run is None or run.status != RunStatus.RUNNING.value:
        return "not running"
    width = settings.lane_width(lane)
    if width == 0:
        return "no such lane"
    if not await runtime.gate.acquire(tenant.tenant_id, run_id):
        return "no slot"  # sweep.run queues the lanes again once it holds one
    http = runtime.clients.take()
    sender = Lane(
        directory=runtime.directory,
        pipeline=runtime.pipeline,
        http=http,
        clock=runtime.clock,
        tenant=tenant,
        run=run,
        width=width,
        retry=RetryPolicy(
            settings.SWEEP_RETRY_ATTEMPTS,
            settings.SWEEP_RETRY_BASE_SECONDS,
            settings.SWEEP_RETRY_MAX_SECONDS,
        ),
        rate_wait_seconds=settings.PARTNER_RATE_WAIT_SECONDS,
        claim_until=entered + settings.SWEEP_SEND_JOB_SECONDS,
        deadline=entered + settings.SWEEP_JOB_TIMEOUT_SECONDS - DEADLINE_MARGIN_SECONDS,
        stopping=runtime.stopping,
    )
    runtime.lanes_running += 1
    try:
        await sender.run_lane()
    finally:
        runtime.clients.give_back(http)
        runtime.lanes_running -= 1
        runtime.claimed_members += sender.claimed
    log.info("sweep.lane_window", claimed=sender.claimed, exhausted=sender.exhausted)
    if not sender.exhausted:
        raise Retry(defer=BACK_OF_THE_QUEUE)
    async with runtime.directory.transaction(tenant) as session:
        completed = await repository.complete_if_done(session, run_id, at=runtime.clock.now())
    if completed:
        await runtime.gate.release(tenant.tenant_id, run_id)
        log.info("sweep.run_completed")
    return "done"


def _describe(error: BaseException) -> str:
    """An operator's one line about a roster failure: the driver's error when there is
    one (the roster statement carries no patient data, so neither does its error)."""
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    name = type(cause).__name__
    return f"{name}: {text[:300]}" if text else name
