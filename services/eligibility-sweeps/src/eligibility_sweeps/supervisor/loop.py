"""The supervisor's loop: hold the schedules, fire what is due, reconcile, beat.

``Supervisor.tick()`` is one pass; ``run()`` repeats it every
``SWEEP_SCHEDULER_TICK_SECONDS`` (ticks never overlap) while ``listen()`` hot-loads
changed schedules from the Redis change channel. A tick:

1. resyncs when due (every ``SWEEP_SCHEDULER_RESYNC_SECONDS``, at the first tick, and
   soon after the change channel reconnects): every active tenant's active schedules
   are read again, the backstop for a signal the supervisor did not hear;
2. fires, per tenant with a schedule whose held time has come, each such schedule in its
   own transaction (``firing.fire_schedule``), then enqueues the new runs' jobs after
   the commit;
3. reconciles when due (every ``SWEEP_RECONCILE_SECONDS``, ``reconcile``);
4. writes the heartbeat that ``GET /api/v1/eligibility/sweeps/scheduler`` reads.

Isolation: tenants are worked on ``SWEEP_SCHEDULER_TENANT_CONCURRENCY`` at a time, each
bounded by ``SWEEP_SCHEDULER_TENANT_TIMEOUT_SECONDS``; a tenant that fails (its
database down, dropped, slow) is logged with its id and the error's type and counted,
and the others carry on; a schedule that fails is looked at again after
``SCHEDULE_RETRY`` rather than every tick. One tenant's work (firing, reload, resync)
runs under that tenant's lock, so a reload never overwrites a later read.

``SWEEP_SCHEDULER_ENABLED=false``: no schedule is held or fired, the heartbeat says
``enabled: false``; the reconciler keeps running, since manual runs rely on it too.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from arq.connections import ArqRedis
from prometheus_client import Counter, Gauge, Histogram
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from eligibility_sweeps.run.service import enqueue_run
from eligibility_sweeps.schedule.heartbeat import DEFAULT_TTL_SECONDS, write_heartbeat
from eligibility_sweeps.schedule.signals import ScheduleChange, change_channel, parse_change
from eligibility_sweeps.supervisor import repository
from eligibility_sweeps.supervisor.armed import ArmedSchedules
from eligibility_sweeps.supervisor.config import SupervisorSettings
from eligibility_sweeps.supervisor.firing import Firing, Outcome, fire_schedule
from eligibility_sweeps.supervisor.reconcile import reconcile_tenant
from rcm_kit.clock import Clock, SystemClock, rfc3339
from rcm_kit.logging import get_logger
from rcm_kit.tenancy import Tenant, TenantDirectory

log = get_logger(__name__)
T = TypeVar("T")

# A schedule whose firing failed (alone, or with its whole tenant) is looked at again
# this much later, not every tick.
SCHEDULE_RETRY = timedelta(seconds=15)
# After a failed resync (e.g. the master database is down) try again this soon.
RESYNC_RETRY_SECONDS = 5.0
# /healthz: stale after three ticks without one, but never sooner than this (a tick that
# waits on a slow tenant, up to its timeout, is not a wedged process).
HEALTH_FLOOR_SECONDS = 30.0

ARMED = Gauge("sweep_scheduler_armed_schedules", "Active schedules the supervisor holds")
FIRINGS = Counter(
    "sweep_scheduler_firings_total",
    "Cron firings by what they did (run = a run was created)",
    ["outcome"],
)
SKIPS = Counter(
    "sweep_scheduler_skips_total", "Fire times recorded as skipped, by reason", ["reason"]
)
LAST_TICK = Gauge(
    "sweep_scheduler_last_tick_timestamp_seconds", "Unix time of the last completed tick"
)
TICKS = Counter("sweep_scheduler_ticks_total", "Supervisor ticks by result", ["result"])
TICK_SECONDS = Histogram(
    "sweep_scheduler_tick_duration_seconds",
    "Wall time of one supervisor tick",
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RECONCILED = Counter(
    "sweep_scheduler_reconciled_runs_total",
    "Runs found QUEUED or RUNNING without a live job and enqueued again",
)
ENQUEUE_FAILURES = Counter(
    "sweep_scheduler_enqueue_failures_total",
    "Fired runs whose job could not be enqueued (the reconciler enqueues them later)",
)
TENANT_FAILURES = Counter(
    "sweep_scheduler_tenant_failures_total", "Tenant work that failed, by stage", ["stage"]
)
CHANGES = Counter(
    "sweep_scheduler_change_signals_total", "Schedule change signals received", ["change"]
)
RESYNCS = Counter("sweep_scheduler_resyncs_total", "Full schedule reloads by result", ["result"])


def _error_type(error: BaseException) -> dict[str, str]:
    """The error's type and the driver's, never its text (it can quote row values)."""
    found = {"error": type(error).__name__}
    if isinstance(error, DBAPIError) and error.orig is not None:
        cause = getattr(error.orig, "__cause__", None) or error.orig
        found["cause"] = type(cause).__name__
    return found


@dataclass
class TickReport:
    started_at: datetime
    due: int = 0  # schedules looked at because their held time had come
    runs: list[tuple[UUID, UUID]] = field(default_factory=list)  # (tenant_id, sweep_run_id)
    outcomes: collections.Counter[Outcome] = field(default_factory=collections.Counter)
    missed: int = 0  # fire times recorded as missed
    tenants_failed: int = 0
    schedules_failed: int = 0
    enqueue_failed: int = 0
    reconciled: list[tuple[UUID, UUID]] = field(default_factory=list)
    duration_seconds: float = 0.0

    @property
    def fired(self) -> int:
        return self.outcomes[Outcome.RUN]

    @property
    def skipped(self) -> int:
        return self.outcomes[Outcome.OVERLAP] + self.outcomes[Outcome.INVALID] + self.missed


class Supervisor:
    """The sweeps supervisor. ``tick()`` is one pass; ``run()`` repeats it until
    ``stop()``, with ``listen()`` beside it."""

    def __init__(
        self,
        *,
        directory: TenantDirectory,
        arq: ArqRedis,
        settings: SupervisorSettings,
        clock: Clock | None = None,
    ) -> None:
        self.directory = directory
        self.arq = arq
        self.settings = settings
        self.clock = clock or SystemClock()
        self.armed = ArmedSchedules()
        self.stopping = asyncio.Event()
        self.listening = asyncio.Event()  # subscribed to the change channel
        self.last_tick_at: datetime | None = None
        self.grace = timedelta(seconds=settings.SWEEP_MISSED_FIRE_GRACE_SECONDS)
        self._alive_since = time.monotonic()
        self._next_resync: float | None = None  # monotonic; None = at the next tick
        self._next_reconcile: float | None = None
        self._tenant_slots = asyncio.Semaphore(settings.SWEEP_SCHEDULER_TENANT_CONCURRENCY)
        self._tenant_locks: collections.defaultdict[UUID, asyncio.Lock] = collections.defaultdict(
            asyncio.Lock
        )
        self._one_tick = asyncio.Lock()
        self._reloads: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return self.settings.SWEEP_SCHEDULER_ENABLED

    @property
    def tick_seconds(self) -> float:
        return self.settings.SWEEP_SCHEDULER_TICK_SECONDS

    def stop(self) -> None:
        if not self.stopping.is_set():
            log.info("supervisor.stopping")
        self.stopping.set()

    def request_resync(self) -> None:
        """Resync at the next tick."""
        self._next_resync = None

    # ------------------------------------------------------------ per-tenant plumbing

    async def _bounded(
        self, tenant_id: UUID, stage: str, work: Callable[[], Awaitable[T]]
    ) -> T | None:
        """``work`` for one tenant: a concurrency slot and the tenant timeout; a failure
        is logged with the tenant's id and the error's type, counted, and raised as
        ``_TenantFailed`` for the caller to tally. None when stopping."""
        async with self._tenant_slots:
            if self.stopping.is_set():
                return None
            try:
                async with asyncio.timeout(self.settings.SWEEP_SCHEDULER_TENANT_TIMEOUT_SECONDS):
                    return await work()
            except Exception as error:
                TENANT_FAILURES.labels(stage).inc()
                if not isinstance(error, _SchedulesFailed):  # those are logged one by one
                    log.error(
                        "supervisor.tenant_failed",
                        tenant_id=str(tenant_id),
                        stage=stage,
                        **_error_type(error),
                    )
                raise _TenantFailed from error

    # ------------------------------------------------------------ one tick

    async def tick(self, now: datetime | None = None) -> TickReport:
        """One pass (see the module docstring). ``now`` defaults to the clock."""
        async with self._one_tick:
            return await self._tick(now or self.clock.now())

    async def _tick(self, now: datetime) -> TickReport:
        report = TickReport(started_at=now)
        started = time.perf_counter()
        try:
            if self.enabled:
                if self._next_resync is None or time.monotonic() >= self._next_resync:
                    await self.resync()
                await self._fire_due(now, report)
            if self._next_reconcile is None or time.monotonic() >= self._next_reconcile:
                self._next_reconcile = time.monotonic() + self.settings.SWEEP_RECONCILE_SECONDS
                report.reconciled = await self.reconcile(now)
        except Exception:
            TICKS.labels("failed").inc()
            raise
        finally:
            report.duration_seconds = time.perf_counter() - started
            TICK_SECONDS.observe(report.duration_seconds)
        TICKS.labels("completed").inc()
        LAST_TICK.set(now.timestamp())
        ARMED.set(self.armed.total if self.enabled else 0)
        self.last_tick_at = now
        self._alive_since = time.monotonic()
        eventful = report.due or report.reconciled or report.tenants_failed
        (log.info if eventful else log.debug)(
            "supervisor.tick_completed",
            due=report.due,
            fired=report.fired,
            skipped=report.skipped,
            tenants_failed=report.tenants_failed,
            schedules_failed=report.schedules_failed,
            enqueue_failed=report.enqueue_failed,
            reconciled=len(report.reconciled),
            armed=self.armed.total,
            duration_ms=round(report.duration_seconds * 1000, 1),
        )
        await self.write_heartbeat(now)
        return report

    # ------------------------------------------------------------ holding schedules

    async def resync(self) -> int:
        """Read every active tenant's active schedules again; how many tenants failed.
        A tenant that fails keeps what was held for it."""
        try:
            tenants = await self.directory.list(active_only=True)
        except Exception as error:
            RESYNCS.labels("failed").inc()
            log.error("supervisor.resync_failed", **_error_type(error))
            self._next_resync = time.monotonic() + min(
                RESYNC_RETRY_SECONDS, self.settings.SWEEP_SCHEDULER_RESYNC_SECONDS
            )
            return 0
        results = await asyncio.gather(
            *(self._load_tenant(tenant) for tenant in tenants), return_exceptions=True
        )
        self.armed.keep_tenants(tenant.tenant_id for tenant in tenants)
        failed = sum(1 for result in results if isinstance(result, BaseException))
        RESYNCS.labels("completed" if not failed else "partial").inc()
        self._next_resync = time.monotonic() + self.settings.SWEEP_SCHEDULER_RESYNC_SECONDS
        ARMED.set(self.armed.total)
        log.info("supervisor.resynced", tenants=len(tenants), failed=failed, armed=self.armed.total)
        return failed

    async def _load_tenant(self, tenant: Tenant) -> None:
        async def load() -> None:
            async with self._tenant_locks[tenant.tenant_id]:
                async with self.directory.transaction(tenant) as session:
                    schedules = await repository.armed_schedules(session)
                self.armed.replace(tenant.tenant_id, schedules)

        await self._bounded(tenant.tenant_id, "resync", load)

    async def reload(self, change: ScheduleChange) -> None:
        """Read one schedule again after its change signal: arm it at its next fire time,
        or disarm it (paused, deleted, or its tenant no longer active)."""

        async def load() -> None:
            tenant = await self.directory.get(change.tenant_id)
            if tenant is None or not tenant.active:
                self.armed.drop_tenant(change.tenant_id)
                return
            async with self._tenant_locks[tenant.tenant_id]:
                async with self.directory.transaction(tenant) as session:
                    next_fire_at = await repository.next_fire_at(session, change.schedule_id)
                self.armed.set(tenant.tenant_id, change.schedule_id, next_fire_at)
            ARMED.set(self.armed.total)
            log.info(
                "supervisor.schedule_reloaded",
                tenant_id=str(change.tenant_id),
                schedule_id=str(change.schedule_id),
                change=change.change.value,
                armed=next_fire_at is not None,
            )

        with contextlib.suppress(_TenantFailed):
            await self._bounded(change.tenant_id, "reload", load)

    # ------------------------------------------------------------ firing

    async def _fire_due(self, now: datetime, report: TickReport) -> None:
        due = self.armed.due(now)
        report.due = sum(len(ids) for ids in due.values())
        results = await asyncio.gather(
            *(self._fire_tenant(tenant_id, ids, now, report) for tenant_id, ids in due.items()),
            return_exceptions=True,
        )
        for (tenant_id, ids), result in zip(due.items(), results, strict=True):
            if not isinstance(result, BaseException):
                continue
            report.tenants_failed += 1
            # Its database (or the master) is down: look again later, not every tick.
            for schedule_id in ids:
                held = self.armed.get(tenant_id, schedule_id)
                if held is not None and held <= now:
                    self.armed.set(tenant_id, schedule_id, now + SCHEDULE_RETRY)

    async def _fire_tenant(
        self, tenant_id: UUID, schedule_ids: list[UUID], now: datetime, report: TickReport
    ) -> None:
        async def fire() -> None:
            tenant = await self.directory.get(tenant_id)
            if tenant is None or not tenant.active:
                self.armed.drop_tenant(tenant_id)
                return
            failures = 0
            async with self._tenant_locks[tenant_id]:
                for schedule_id in schedule_ids:
                    if self.stopping.is_set():
                        return
                    failures += not await self._fire_one(tenant, schedule_id, now, report)
            if failures:
                raise _SchedulesFailed(failures)

        await self._bounded(tenant_id, "fire", fire)

    async def _fire_one(
        self, tenant: Tenant, schedule_id: UUID, now: datetime, report: TickReport
    ) -> bool:
        """Fire one schedule and enqueue its run after the commit; False if it failed."""
        try:
            async with self.directory.transaction(tenant) as session:
                firing = await fire_schedule(session, schedule_id, now=now, grace=self.grace)
        except Exception as error:
            report.schedules_failed += 1
            log.error(
                "supervisor.schedule_failed",
                tenant_id=str(tenant.tenant_id),
                schedule_id=str(schedule_id),
                **_error_type(error),
            )
            self.armed.set(tenant.tenant_id, schedule_id, now + SCHEDULE_RETRY)
            return False
        self.armed.set(tenant.tenant_id, schedule_id, firing.next_fire_at)
        self._count(firing, report)
        if firing.sweep_run_id is not None:
            report.runs.append((tenant.tenant_id, firing.sweep_run_id))
            try:
                await enqueue_run(self.arq, tenant.tenant_id, firing.sweep_run_id)
            except (RedisError, OSError) as error:
                # The run is committed and QUEUED: the reconciler enqueues it later.
                report.enqueue_failed += 1
                ENQUEUE_FAILURES.inc()
                log.warning(
                    "supervisor.enqueue_failed",
                    tenant_id=str(tenant.tenant_id),
                    sweep_run_id=str(firing.sweep_run_id),
                    **_error_type(error),
                )
        return True

    @staticmethod
    def _count(firing: Firing, report: TickReport) -> None:
        if firing.outcome in (Outcome.NOT_DUE, Outcome.BUSY):
            return
        report.outcomes[firing.outcome] += 1
        report.missed += firing.missed
        FIRINGS.labels(firing.outcome.value).inc()
        if firing.missed:
            SKIPS.labels("missed").inc(firing.missed)
        if firing.outcome in (Outcome.OVERLAP, Outcome.INVALID):
            SKIPS.labels(firing.outcome.value).inc()

    # ------------------------------------------------------------ reconciling

    async def reconcile(self, now: datetime | None = None) -> list[tuple[UUID, UUID]]:
        """Enqueue again every active tenant's runs left QUEUED or RUNNING without a live
        job (``reconcile``); the ``(tenant_id, sweep_run_id)`` enqueued."""
        now = now or self.clock.now()
        changed_before = now - timedelta(seconds=self.settings.SWEEP_RECONCILE_GRACE_SECONDS)
        try:
            tenants = await self.directory.list(active_only=True)
        except Exception as error:
            log.error("supervisor.reconcile_failed", **_error_type(error))
            return []

        async def one(tenant: Tenant) -> list[tuple[UUID, UUID]]:
            async def work() -> list[UUID]:
                return await reconcile_tenant(
                    self.directory, self.arq, tenant, changed_before=changed_before
                )

            try:
                found = await self._bounded(tenant.tenant_id, "reconcile", work)
            except _TenantFailed:
                return []
            return [(tenant.tenant_id, run_id) for run_id in found or []]

        enqueued = [pair for pairs in await asyncio.gather(*map(one, tenants)) for pair in pairs]
        RECONCILED.inc(len(enqueued))
        return enqueued

    # ------------------------------------------------------------ change signals

    async def listen(self) -> None:
        """Hold one subscription to the change channel and reload each changed schedule,
        until ``stop()``. A lost connection is re-made with backoff, followed by a resync
        (signals published meanwhile were lost)."""
        channel = change_channel(self.settings.DATABASE_URL)
        backoff = 0.5
        connected_before = False
        while not self.stopping.is_set():
            pubsub = self.arq.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                if connected_before:
                    self.request_resync()
                connected_before = True
                self.listening.set()
                backoff = 0.5
                log.info("supervisor.listening")
                while not self.stopping.is_set():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is None or message.get("type") != "message":
                        continue
                    change = parse_change(message["data"])
                    if change is None:
                        log.warning("supervisor.change_signal_unreadable")
                        continue
                    CHANGES.labels(change.change.value).inc()
                    task = asyncio.create_task(self.reload(change))
                    self._reloads.add(task)
                    task.add_done_callback(self._reloads.discard)
            except (RedisError, OSError) as error:
                self.listening.clear()
                log.warning("supervisor.change_channel_lost", **_error_type(error))
                await self._sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
        self.listening.clear()

    # ------------------------------------------------------------ heartbeat and health

    async def write_heartbeat(self, at: datetime) -> None:
        try:
            await write_heartbeat(
                self.arq,
                database_url=self.settings.DATABASE_URL,
                enabled=self.enabled,
                armed_schedules=self.armed.counts() if self.enabled else {},
                at=at,
                ttl_seconds=max(DEFAULT_TTL_SECONDS, 3 * self.tick_seconds),
            )
        except (RedisError, OSError) as error:
            log.warning("supervisor.heartbeat_not_written", **_error_type(error))

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy unless enabled and no tick has completed for three tick intervals (at
        least ``HEALTH_FLOOR_SECONDS``): a wedged loop is then restarted by whatever
        watches /healthz."""
        quiet = time.monotonic() - self._alive_since
        stale = self.enabled and quiet > max(3 * self.tick_seconds, HEALTH_FLOOR_SECONDS)
        return not stale, {
            "status": "stale" if stale else "ok",
            "enabled": self.enabled,
            "last_tick_at": rfc3339(self.last_tick_at) if self.last_tick_at else None,
            "armed_schedules": self.armed.total if self.enabled else 0,
            "tick_seconds": self.tick_seconds,
        }

    # ------------------------------------------------------------ the loop

    async def run(self) -> None:
        """Tick every interval until ``stop()``, listening for changes meanwhile."""
        if not self.enabled:
            log.warning(
                "supervisor.disabled",
                reason="SWEEP_SCHEDULER_ENABLED=false: no schedule fires",
            )
        listener = asyncio.create_task(self.listen()) if self.enabled else None
        try:
            while not self.stopping.is_set():
                started = time.monotonic()
                try:
                    await self.tick()
                except Exception as error:
                    log.error("supervisor.tick_failed", **_error_type(error))
                elapsed = time.monotonic() - started
                if elapsed > self.tick_seconds:
                    log.debug("supervisor.tick_overran", duration_ms=round(elapsed * 1000))
                await self._sleep(self.tick_seconds - elapsed)
        finally:
            tasks = [*self._reloads, *([listener] if listener else [])]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)


class _TenantFailed(Exception):
    """One tenant's work failed (already logged and counted)."""


class _SchedulesFailed(Exception):
    """Some of a tenant's schedules failed to fire (each already logged)."""
