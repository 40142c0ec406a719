"""``sweeps-worker``: the arq worker that runs eligibility sweeps.

The process: settings validated first (a bad value exits 2 naming the variable), one
arq ``Worker`` on the sweeps queue (``jobs``), and a small HTTP server on
``SWEEPS_WORKER_HOST:SWEEPS_WORKER_HEALTH_PORT`` with ``/healthz`` and ``/metrics``
(sweeps holding a slot, send jobs running here, members by outcome, 270 round trips,
check outcomes, settlement transactions).

SIGTERM or SIGINT: the worker takes no new job, the send jobs running claim no new
member and their members in flight finish and settle within
``SWEEPS_WORKER_SHUTDOWN_GRACE_SECONDS``; each such job then goes back to the queue for
another worker. Jobs still running after the grace are cancelled (arq runs them again
elsewhere); their members in flight stay claimed, and the claim timeout reports them
(``Outcome unknown: 270 <trace number> was interrupted``): never a second 270. Every
write is one transaction, so nothing is left half-written. The process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from prometheus_client import Gauge
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from eligibility_sweeps.worker.jobs import PROCESS, WorkerRuntime, create_worker
from eligibility_sweeps.worker.settings import WorkerSettings
from rcm_kit.clock import Clock
from rcm_kit.logging import configure_logging, get_logger
from rcm_kit.settings import load_settings
from rcm_kit.web import embedded_server, metrics_response, run_loop_process

log = get_logger(__name__)

SWEEPS_RUNNING = Gauge(
    "sweeps_running", "Sweeps holding a slot of INGEST_QUEUE_CONCURRENCY (all workers)"
)
LANES_RUNNING = Gauge("sweeps_worker_send_jobs_running", "Send jobs running in this process")
JOBS_RUNNING = Gauge("sweeps_worker_jobs_running", "arq jobs running in this process")


class SweepsWorker:
    """The worker of one process: ``run()`` until ``stop()``, then a bounded shutdown."""

    def __init__(
        self, settings: WorkerSettings, *, clock: Clock | None = None, burst: bool = False
    ) -> None:
        self.settings = settings
        self.runtime = WorkerRuntime.build(settings, clock=clock)
        self.worker = create_worker(self.runtime, burst=burst)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    def stop(self) -> None:
        if not self._stop.is_set():
            log.info("worker.stopping")
        self._stop.set()

    async def run(self) -> None:
        """Work until ``stop()`` (or, in burst mode, until the queue is empty)."""
        self._task = asyncio.create_task(self.worker.async_run())
        stop_requested = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({self._task, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
            await self._shutdown()
        finally:
            stop_requested.cancel()
            await asyncio.gather(stop_requested, return_exceptions=True)
            await self.runtime.close()
            log.info("worker.stopped")

    async def _shutdown(self) -> None:
        worker = self.worker
        self.runtime.stopping.set()
        worker.allow_pick_jobs = False
        grace = self.settings.SWEEPS_WORKER_SHUTDOWN_GRACE_SECONDS
        running = [t for t in worker.tasks.values() if not t.done()]
        if running:
            await asyncio.wait(running, timeout=grace)
        left = sum(not t.done() for t in worker.tasks.values())
        if left:
            log.warning("worker.jobs_abandoned", jobs=left, grace_seconds=grace)
        # Cancels what is left (arq queues it again) and the polling loop. Not
        # ``Worker.close()``: it closes the Redis pool with a call redis-py deprecates;
        # the runtime closes it.
        worker.handle_sig(signal.SIGTERM)
        await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            await self.runtime.arq.delete(worker.health_check_key)
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    def health(self) -> tuple[bool, dict[str, Any]]:
        status = "stopping" if self.stopping else ("ok" if self.alive else "down")
        return status != "down", {
            "status": status,
            "jobs_running": sum(not t.done() for t in self.worker.tasks.values()),
            "send_jobs_running": self.runtime.lanes_running,
        }


def health_app(worker: SweepsWorker) -> Starlette:
    async def healthz(_: Request) -> Response:
        ok, body = worker.health()
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics(_: Request) -> Response:
        with contextlib.suppress(RedisError, OSError):
            SWEEPS_RUNNING.set(await worker.runtime.gate.holders())
        LANES_RUNNING.set(worker.runtime.lanes_running)
        JOBS_RUNNING.set(sum(not t.done() for t in worker.worker.tasks.values()))
        return await metrics_response()

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics)])


async def serve(settings: WorkerSettings) -> None:
    """The process: health server, signal handling, the worker, a bounded shutdown."""
    worker = SweepsWorker(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    health = embedded_server(
        health_app(worker),
        host=settings.SWEEPS_WORKER_HOST,
        port=settings.SWEEPS_WORKER_HEALTH_PORT,
    )
    health_task = asyncio.create_task(health.serve())
    log.info(
        "worker.started",
        ingest_queue_concurrency=settings.INGEST_QUEUE_CONCURRENCY,
        member_concurrency=settings.SWEEP_MEMBER_CONCURRENCY,
        lanes=settings.lanes,
        max_jobs=settings.SWEEPS_WORKER_MAX_JOBS,
        health=f"http://{settings.SWEEPS_WORKER_HOST}:{settings.SWEEPS_WORKER_HEALTH_PORT}/healthz",
    )
    try:
        await worker.run()
    finally:
        health.should_exit = True
        await asyncio.gather(health_task, return_exceptions=True)


def main() -> None:
    settings = load_settings(WorkerSettings, PROCESS)
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT, PROCESS)
    # arq logs a line per job start and end (our jobs re-queue themselves every few
    # seconds) and httpx one per request (hundreds a second here): their warnings are
    # kept, our own events say what happened.
    if settings.LOG_LEVEL != "DEBUG":
        for noisy in ("arq", "httpx"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    run_loop_process(serve(settings))


if __name__ == "__main__":
    main()
