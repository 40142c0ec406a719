"""``sweeps-supervisor``: the process around ``loop.Supervisor``.

It validates its settings (exit 2 naming the variable), serves ``/healthz`` and
``/metrics`` on ``SWEEPS_SUPERVISOR_HEALTH_PORT`` (default 9105), runs the loop and the
change listener, and on SIGTERM or SIGINT stops: no new tenant or firing is started,
the tick in flight gets ``SWEEPS_SUPERVISOR_SHUTDOWN_GRACE_SECONDS`` to finish (a firing
is one transaction, committed or not at all; a run committed whose job was not enqueued
is the reconciler's), and the process exits 0.

Several replicas may run: a firing is decided by its schedule's row, not by memory.
"""

from __future__ import annotations

import asyncio
import signal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from eligibility_sweeps.run.service import open_arq_pool
from eligibility_sweeps.supervisor.config import SupervisorSettings
from eligibility_sweeps.supervisor.loop import Supervisor
from rcm_kit.clock import Clock
from rcm_kit.db import TenantConnectionResolver, create_engine
from rcm_kit.logging import configure_logging, get_logger
from rcm_kit.settings import load_settings
from rcm_kit.tenancy import TenantDirectory
from rcm_kit.web import embedded_server, metrics_response, run_loop_process, run_until_stopped

PROCESS = "sweeps-supervisor"
log = get_logger(__name__)


def health_app(supervisor: Supervisor) -> Starlette:
    async def healthz(_: Request) -> Response:
        ok, body = supervisor.health()
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics(_: Request) -> Response:
        return await metrics_response()

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics)])


def build(settings: SupervisorSettings, *, clock: Clock | None = None) -> Supervisor:
    """A supervisor on its own engines. A tenant's firings run one after the other under
    its lock; a reload or the reconciler may want a second connection meanwhile, hence
    two per tenant engine and at most MAX_TENANT_ENGINES engines."""
    master = create_engine(settings.DATABASE_URL, pool_size=2, app_name=PROCESS)
    resolver = TenantConnectionResolver(
        pool_size=2, max_engines=settings.MAX_TENANT_ENGINES, app_name=PROCESS
    )
    return Supervisor(
        directory=TenantDirectory(master, resolver, settings.TENANT_CACHE_SECONDS),
        arq=open_arq_pool(settings.REDIS_URL, settings.DATABASE_URL),
        settings=settings,
        clock=clock,
    )


async def close(supervisor: Supervisor) -> None:
    await supervisor.directory.dispose()
    await supervisor.arq.aclose()


async def serve(settings: SupervisorSettings) -> None:
    """The process: health server, signal handling, the loop, a bounded shutdown."""
    supervisor = build(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, supervisor.stop)
    health = embedded_server(
        health_app(supervisor),
        host=settings.SWEEPS_SUPERVISOR_HOST,
        port=settings.SWEEPS_SUPERVISOR_HEALTH_PORT,
    )
    health_task = asyncio.create_task(health.serve())
    log.info(
        "supervisor.started",
        enabled=supervisor.enabled,
        tick_seconds=settings.SWEEP_SCHEDULER_TICK_SECONDS,
        resync_seconds=settings.SWEEP_SCHEDULER_RESYNC_SECONDS,
        missed_fire_grace_seconds=settings.SWEEP_MISSED_FIRE_GRACE_SECONDS,
        health=f"http://{settings.SWEEPS_SUPERVISOR_HOST}:"
        f"{settings.SWEEPS_SUPERVISOR_HEALTH_PORT}/healthz",
    )
    try:
        # Stopping: the loop starts nothing new; the work in flight gets its grace.
        await run_until_stopped(
            supervisor.run(),
            supervisor.stopping,
            grace=settings.SWEEPS_SUPERVISOR_SHUTDOWN_GRACE_SECONDS,
            name="supervisor",
        )
    finally:
        health.should_exit = True
        await asyncio.gather(health_task, return_exceptions=True)
        await close(supervisor)
        log.info("supervisor.stopped")


def main() -> None:
    settings = load_settings(SupervisorSettings, PROCESS)
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT, PROCESS)
    run_loop_process(serve(settings))


if __name__ == "__main__":
    main()
