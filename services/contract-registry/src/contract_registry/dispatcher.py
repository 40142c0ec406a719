"""``contracts-dispatcher``: mails each due expiry alert once per tenant calendar day.

One tick every ``CONTRACT_EXPIRY_INTERVAL_MS``, never two at once in a process (the loop
awaits each tick before sleeping towards the next). A tick reads the active tenants from
the master database and works through them ``CONTRACT_EXPIRY_TENANT_CONCURRENCY`` at a
time. A tenant's database work is two short transactions (plan and claim, then record)
and its mails go out concurrently: at most ``CONTRACT_EXPIRY_SEND_CONCURRENCY`` in flight
in the whole process, each bounded by ``SMTP_TIMEOUT_SECONDS``. A tenant whose database
fails is logged (its id, the error's type) and counted, and the others carry on. The
steps are in ``expiry_alert.delivery``; the once-a-day guarantee across replicas is its
database claim.

``CONTRACT_EXPIRY_ALERTS_ENABLED=false`` keeps the process up (health, metrics, the
heartbeat saying ``enabled: false``) and sends nothing.

SIGTERM or SIGINT: no new tenant, alert or claim is started; the sends in flight finish
and are recorded within ``CONTRACT_EXPIRY_SHUTDOWN_GRACE_SECONDS``, after which the tick
is cancelled (an attempt is recorded in one transaction or not at all; a claim left
SENDING becomes "outcome unknown" after the claim timeout). The process exits 0.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contract_registry.config import DispatcherSettings
from contract_registry.expiry_alert import delivery, dispatcher_status
from contract_registry.expiry_alert.delivery import Outcome, RetryPolicy
from rcm_kit.clock import Clock, SystemClock, rfc3339
from rcm_kit.db import TenantConnectionResolver, create_engine
from rcm_kit.logging import configure_logging, get_logger
from rcm_kit.mail import MailSender, SendError
from rcm_kit.settings import load_settings
from rcm_kit.tenancy import Tenant, TenantDirectory
from rcm_kit.web import embedded_server, metrics_response, run_loop_process, run_until_stopped

PROCESS = "contracts-dispatcher"
log = get_logger(__name__)

TICKS = Counter("contract_expiry_ticks_total", "Dispatcher ticks by result", ["result"])
TICK_SECONDS = Histogram(
    "contract_expiry_tick_duration_seconds",
    "Wall time of one dispatcher tick",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
LAST_TICK = Gauge(
    "contract_expiry_last_tick_timestamp_seconds", "Unix time at which the last tick started"
)
TENANT_FAILURES = Counter(
    "contract_expiry_tenant_failures_total", "Tenants a tick could not process"
)
ALERTS = Counter(
    "contract_expiry_due_alerts_total", "Due alerts by what the dispatcher did", ["outcome"]
)


@dataclass
class TickReport:
    started_at: datetime
    tenants: int = 0
    tenants_failed: int = 0
    due: int = 0
    abandoned_claims: int = 0
    outcomes: collections.Counter[Outcome] = field(default_factory=collections.Counter)
    duration_seconds: float = 0.0

    @property
    def sent(self) -> int:
        return self.outcomes[Outcome.SUCCESS]

    @property
    def failed(self) -> int:
        return self.outcomes[Outcome.FAILED]

    @property
    def no_contracts(self) -> int:
        return self.outcomes[Outcome.NO_CONTRACTS]

    @property
    def skipped(self) -> int:
        return self.outcomes[Outcome.SKIPPED] + self.outcomes[Outcome.STOPPING]


def _error_type(error: BaseException) -> dict[str, str]:
    """The error's type and the driver's, never its text: a database error's text can
    quote the values of the row it refused (addresses, contract data)."""
    found = {"error": type(error).__name__}
    if isinstance(error, DBAPIError) and error.orig is not None:
        cause = getattr(error.orig, "__cause__", None) or error.orig
        found["cause"] = type(cause).__name__
    return found


class Dispatcher:
    """The expiry-alert loop. ``tick()`` is one pass over every tenant; ``run()`` repeats
    it until ``stop()``."""

    def __init__(
        self,
        *,
        directory: TenantDirectory,
        sender: MailSender,
        settings: DispatcherSettings,
        clock: Clock | None = None,
        redis: Redis | None = None,
    ) -> None:
        self.directory = directory
        self.sender = sender
        self.settings = settings
        self.clock = clock or SystemClock()
        self.redis = redis
        self.retry = RetryPolicy(
            settings.CONTRACT_EXPIRY_RETRY_BASE_SECONDS, settings.CONTRACT_EXPIRY_RETRY_MAX_SECONDS
        )
        self.claim_timeout = timedelta(seconds=settings.CONTRACT_EXPIRY_CLAIM_TIMEOUT_SECONDS)
        self.stopping = asyncio.Event()
        self.last_tick_at: datetime | None = None
        self._alive_since = time.monotonic()
        self._tenant_slots = asyncio.Semaphore(settings.CONTRACT_EXPIRY_TENANT_CONCURRENCY)
        self._one_tick = asyncio.Lock()  # run() never overlaps ticks; nor may direct callers
        self._status_key = dispatcher_status.status_key(settings.DATABASE_URL)

    @property
    def enabled(self) -> bool:
        return self.settings.CONTRACT_EXPIRY_ALERTS_ENABLED

    @property
    def interval_seconds(self) -> float:
        return self.settings.CONTRACT_EXPIRY_INTERVAL_MS / 1000

    def stop(self) -> None:
        if not self.stopping.is_set():
            log.info("dispatcher.stopping")
        self.stopping.set()

    # ------------------------------------------------------------ one tick

    async def tick(self, now: datetime | None = None) -> TickReport:
        """One pass: every active tenant, every due alert. ``now`` defaults to the clock."""
        async with self._one_tick:
            return await self._tick(now or self.clock.now())

    async def _tick(self, now: datetime) -> TickReport:
        report = TickReport(started_at=now)
        started = time.perf_counter()
        try:
            tenants = await self.directory.list(active_only=True)
            report.tenants = len(tenants)
            await asyncio.gather(*(self._tenant(tenant, now, report) for tenant in tenants))
        except Exception:
            TICKS.labels("failed").inc()
            raise
        finally:
            report.duration_seconds = time.perf_counter() - started
            TICK_SECONDS.observe(report.duration_seconds)
            # Connections reused within the tick are not left open until the next one.
            await self.sender.close()
        TICKS.labels("completed").inc()
        LAST_TICK.set(now.timestamp())
        self.last_tick_at = now
        self._alive_since = time.monotonic()
        for outcome, count in report.outcomes.items():
            ALERTS.labels(outcome.value).inc(count)
        log.info(
            "dispatcher.tick_completed",
            tenants=report.tenants,
            tenants_failed=report.tenants_failed,
            due=report.due,
            sent=report.sent,
            failed=report.failed,
            no_contracts=report.no_contracts,
            skipped=report.skipped,
            abandoned_claims=report.abandoned_claims,
            duration_ms=round(report.duration_seconds * 1000, 1),
        )
        await self.publish_status()
        return report

    async def _tenant(self, tenant: Tenant, now: datetime, report: TickReport) -> None:
        async with self._tenant_slots:
            if self.stopping.is_set():
                return
            try:
                async with self.directory.transaction(tenant) as session:
                    plan = await delivery.plan_tenant(
                        session,
                        tenant,
                        now=now,
                        claim_timeout=self.claim_timeout,
                        smtp=self.settings,
                        stopping=self.stopping,
                    )
                # The claims are committed: only this process mails these alerts today.
                results = await asyncio.gather(
                    *(
                        delivery.send_claimed(self.sender, self.settings, tenant, mail, now=now)
                        for mail in plan.mails
                    )
                )
                if plan.mails:
                    async with self.directory.transaction(tenant) as session:
                        await delivery.record_outcomes(
                            session,
                            tenant,
                            list(zip(plan.mails, results, strict=True)),
                            day=plan.local_day,
                            completed_at=self.clock.now(),
                            retry=self.retry,
                        )
            except Exception as error:
                # Claims this tenant made and could not close stay SENDING: the claim
                # timeout turns them into "outcome unknown", never into a second mail.
                report.tenants_failed += 1
                TENANT_FAILURES.inc()
                log.error(
                    "dispatcher.tenant_failed",
                    tenant_id=str(tenant.tenant_id),
                    **_error_type(error),
                )
                return
            report.due += plan.due
            report.abandoned_claims += plan.abandoned_claims
            report.outcomes[Outcome.NO_CONTRACTS] += plan.no_contracts
            report.outcomes[Outcome.SKIPPED] += plan.skipped
            report.outcomes[Outcome.STOPPING] += plan.stopping
            for result in results:
                outcome = Outcome.FAILED if isinstance(result, SendError) else Outcome.SUCCESS
                report.outcomes[outcome] += 1

    # ------------------------------------------------------------ heartbeat and health

    async def publish_status(self) -> None:
        if self.redis is None:
            return
        status = dispatcher_status.DispatcherStatus(
            enabled=self.enabled,
            interval_ms=self.settings.CONTRACT_EXPIRY_INTERVAL_MS,
            last_tick_at=self.last_tick_at if self.enabled else None,
        )
        try:
            await dispatcher_status.publish(self.redis, self._status_key, status)
        except (RedisError, OSError) as error:
            log.warning("dispatcher.status_not_published", error=type(error).__name__)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy unless enabled and no tick has completed for three intervals (at least
        five minutes): a wedged loop is then restarted by whatever watches /healthz."""
        quiet = time.monotonic() - self._alive_since
        stale = self.enabled and quiet > max(3 * self.interval_seconds, 300.0)
        return not stale, {
            "status": "stale" if stale else "ok",
            "enabled": self.enabled,
            "interval_ms": self.settings.CONTRACT_EXPIRY_INTERVAL_MS,
            "last_tick_at": rfc3339(self.last_tick_at) if self.last_tick_at else None,
        }

    # ------------------------------------------------------------ the loop

    async def run(self) -> None:
        """Tick every interval until ``stop()``; while disabled, only the heartbeat."""
        if not self.enabled:
            log.warning(
                "dispatcher.disabled",
                reason="CONTRACT_EXPIRY_ALERTS_ENABLED=false: no alert is sent",
            )
        while not self.stopping.is_set():
            started = time.monotonic()
            if self.enabled:
                try:
                    await self.tick()
                except Exception as error:
                    log.error("dispatcher.tick_failed", **_error_type(error))
                    await self.publish_status()
            else:
                self._alive_since = started
                await self.publish_status()
            elapsed = time.monotonic() - started
            if self.enabled and elapsed > self.interval_seconds:
                log.warning("dispatcher.tick_overran", duration_ms=round(elapsed * 1000))
            await self._sleep(self.interval_seconds - elapsed)

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)


def health_app(dispatcher: Dispatcher) -> Starlette:
    async def healthz(_: Request) -> Response:
        ok, body = dispatcher.health()
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics(_: Request) -> Response:
        return await metrics_response()

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics)])


def build(settings: DispatcherSettings, *, clock: Clock | None = None) -> Dispatcher:
    """A dispatcher on its own engines. A tenant's work is two transactions one after the
    other, so each tenant engine keeps one connection: the dispatcher holds at most
    MAX_TENANT_ENGINES tenant connections (kept between ticks, so a tick does not
    reconnect to every tenant), however many tenants there are."""
    master = create_engine(settings.DATABASE_URL, pool_size=2, app_name=PROCESS)
    resolver = TenantConnectionResolver(
        pool_size=1, max_engines=settings.MAX_TENANT_ENGINES, app_name=PROCESS
    )
    return Dispatcher(
        directory=TenantDirectory(master, resolver, settings.TENANT_CACHE_SECONDS),
        sender=MailSender(settings, max_connections=settings.CONTRACT_EXPIRY_SEND_CONCURRENCY),
        settings=settings,
        clock=clock,
        redis=Redis.from_url(settings.REDIS_URL),
    )


async def serve(settings: DispatcherSettings) -> None:
    """The process: health server, signal handling, the loop, a bounded shutdown."""
    dispatcher = build(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, dispatcher.stop)
    health = embedded_server(
        health_app(dispatcher), host=settings.DISPATCHER_HOST, port=settings.DISPATCHER_HEALTH_PORT
    )
    health_task = asyncio.create_task(health.serve())
    log.info(
        "dispatcher.started",
        enabled=dispatcher.enabled,
        interval_ms=settings.CONTRACT_EXPIRY_INTERVAL_MS,
        health=f"http://{settings.DISPATCHER_HOST}:{settings.DISPATCHER_HEALTH_PORT}/healthz",
    )
    try:
        # Stopping: the loop starts nothing new; the work in flight gets its grace.
        await run_until_stopped(
            dispatcher.run(),
            dispatcher.stopping,
            grace=settings.CONTRACT_EXPIRY_SHUTDOWN_GRACE_SECONDS,
            name="dispatcher",
        )
    finally:
        health.should_exit = True
        await asyncio.gather(health_task, return_exceptions=True)
        await dispatcher.sender.close()
        await dispatcher.directory.dispose()
        if dispatcher.redis is not None:
            await dispatcher.redis.aclose()
        log.info("dispatcher.stopped")


def main() -> None:
    settings = load_settings(DispatcherSettings, PROCESS)
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT, PROCESS)
    run_loop_process(serve(settings))


if __name__ == "__main__":
    main()
