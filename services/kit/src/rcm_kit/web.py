"""What every HTTP process shares: request ids, access logs, body limits, metrics.

``RequestContextMiddleware`` is a plain ASGI middleware (no ``BaseHTTPMiddleware``,
which buffers and slows streaming). It takes ``X-Request-ID`` or makes one, binds it
to the log context, returns it, refuses bodies over the limit with 413, and turns an
unexpected exception into a generic problem+json 500 that still carries the id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import sys
import time
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any, NoReturn

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rcm_kit.errors import PROBLEM_JSON
from rcm_kit.logging import bind_context, clear_context, get_logger

log = get_logger("rcm.request")

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def problem_bytes(status: int, title: str, detail: str, **extra: Any) -> bytes:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return json.dumps(body).encode()


class _BodyTooLarge(Exception):
    pass


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _VALID_REQUEST_ID.match(given) else uuid.uuid4().hex
        clear_context()
        bind_context(request_id=request_id)
        started = time.perf_counter()
        status_holder = {"status": 500, "started": False}
        limit = self.max_body_bytes

        exceeded = False

        async def send_raw(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                message["headers"] = [
                    *(h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        async def send_problem(status: int, title: str, detail: str, **extra: Any) -> None:
            body = problem_bytes(status, title, detail, **extra)
            await send_raw(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", PROBLEM_JSON.encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send_raw({"type": "http.response.body", "body": body})

        async def send_with_id(message: Message) -> None:
            # A body that outgrew the limit while streaming: whatever the app answered
            # (frameworks turn a failed read into a 400), the client gets a 413.
            if exceeded:
                if message["type"] == "http.response.start":
                    await send_problem(413, "Payload too large", f"The body exceeds {limit} bytes.")
                return
            await send_raw(message)

        if limit is not None:
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                await send_problem(413, "Payload too large", f"The body exceeds {limit} bytes.")
                self._done(scope, status_holder["status"], started)
                return
            seen = 0

            async def limited_receive() -> Message:
                nonlocal seen, exceeded
                message = await receive()
                if message["type"] == "http.request":
                    seen += len(message.get("body", b""))
                    if seen > limit:
                        exceeded = True
                        raise _BodyTooLarge
                return message

            inner_receive: Receive = limited_receive
        else:
            inner_receive = receive

        try:
            await self.app(scope, inner_receive, send_with_id)
        except _BodyTooLarge:
            if not status_holder["started"]:
                await send_problem(413, "Payload too large", f"The body exceeds {limit} bytes.")
        except Exception as error:  # the last line of defence: never a stack trace in a body
            log.error("request.unhandled_error", path=scope.get("path"), exc_info=error)
            if not status_holder["started"]:
                await send_problem(
                    500,
                    "Internal Server Error",
                    "An unexpected error occurred. Quote the request id when reporting it.",
                    request_id=request_id,
                )
        finally:
            self._done(scope, status_holder["status"], started)

    @staticmethod
    def _done(scope: Scope, status: Any, started: float) -> None:
        elapsed = time.perf_counter() - started
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        REQUESTS.labels(method, template, str(status)).inc()
        LATENCY.labels(method, template).observe(elapsed)
        log.info(
            "request.completed",
            method=method,
            route=template,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
        )


async def metrics_response() -> Response:
    """Prometheus metrics of this process."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


HTTP_SHUTDOWN_GRACE_SECONDS = 40
"""On SIGTERM, how long an HTTP process lets the requests in flight finish before it
cancels them: longer than the gateway waits on its slow routes (35 s by default), so a
check or a "Send test" the caller still waits for is answered. An orchestrator should
allow a little more before it sends SIGKILL (e.g. ``terminationGracePeriodSeconds: 45``)."""

STARTUP_FAILURE = 3
"""Exit status when the server never started (uvicorn's own)."""


def serve(
    app: Any,
    *,
    host: str,
    port: int,
    proxy_headers: bool = True,
    grace: int = HTTP_SHUTDOWN_GRACE_SECONDS,
) -> None:
    """Run an HTTP process: our logging (not uvicorn's), no server header.

    On SIGTERM (or SIGINT) it closes its listening socket, lets the requests in flight
    finish for up to ``grace`` seconds (then cancels them), runs the app's shutdown and
    returns, so the process exits 0. uvicorn alone re-raises the signal once it has shut
    down, and a clean stop would look like a kill (-15, status 143).
    """
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        proxy_headers=proxy_headers,
        server_header=False,
        timeout_graceful_shutdown=grace,
    )
    server = _server(config, handle_signals=True)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def embedded_server(app: Any, *, host: str, port: int) -> Any:
    """A uvicorn server to run inside a process's own event loop (``await server.serve()``).

    It leaves SIGTERM and SIGINT to the process, which stops its own work first and then
    sets ``should_exit``: uvicorn would otherwise take the signals and re-raise them.
    """
    import uvicorn

    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, server_header=False, lifespan="off"
    )
    return _server(config, handle_signals=False)


def _server(config: Any, *, handle_signals: bool) -> Any:
    """A uvicorn server that never re-raises the signal that stopped it; it takes
    SIGTERM and SIGINT only when ``handle_signals``."""
    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if not handle_signals:
                yield
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return _Server(config)


def run_loop_process(main: Coroutine[Any, Any, None]) -> NoReturn:
    """Run a loop process's ``main`` coroutine on uvloop (asyncio's loop without it) and
    exit 0 once it returns: its own SIGTERM handling decides when that is."""
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main)
    sys.exit(0)


async def run_until_stopped(
    loop: Coroutine[Any, Any, None], stopping: asyncio.Event, *, grace: float, name: str
) -> None:
    """Run a loop process's ``loop`` until it ends or ``stopping`` is set; then give the
    work in flight ``grace`` seconds to finish before cancelling it (logged)."""
    loop_task = asyncio.create_task(loop)
    stop_requested = asyncio.create_task(stopping.wait())
    try:
        await asyncio.wait({loop_task, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
        if not loop_task.done():
            done, _ = await asyncio.wait({loop_task}, timeout=grace)
            if not done:
                log.warning(f"{name}.tick_abandoned", grace_seconds=grace)
                loop_task.cancel()
        await asyncio.gather(loop_task, return_exceptions=True)
    finally:
        stop_requested.cancel()
        await asyncio.gather(stop_requested, return_exceptions=True)
