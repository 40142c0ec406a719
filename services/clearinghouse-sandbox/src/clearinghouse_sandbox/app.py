"""The clearinghouse sandbox process (``clearinghouse-sandbox``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware import Middleware

from clearinghouse_sandbox.config import Settings
from clearinghouse_sandbox.endpoints import router
from clearinghouse_sandbox.service import Sandbox
from rcm_kit.clock import Clock
from rcm_kit.errors import install_error_handlers
from rcm_kit.logging import configure_logging, get_logger
from rcm_kit.settings import load_settings
from rcm_kit.web import RequestContextMiddleware, metrics_response, serve

PROCESS = "clearinghouse-sandbox"
MAX_BODY_BYTES = 5 * 1024 * 1024
SHUTDOWN_GRACE_SECONDS = 3
"""On SIGTERM, how long requests in flight may finish: an ``SBX-HANG`` whose client
is still connected would otherwise hold the process for ``hang_seconds``."""

log = get_logger(__name__)


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or load_settings(Settings, PROCESS)
    sandbox = Sandbox(settings, clock=clock)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.info("sandbox.started", delivery=sandbox.config.delivery)
        try:
            yield
        finally:
            await sandbox.courier.close()
            log.info("sandbox.stopped")

    app = FastAPI(
        title="Clearinghouse sandbox",
        description="A stand-in trading partner: answers X12 270 eligibility inquiries "
        "with 271, 999 or TA1 by rule, over raw X12 HTTP or CAQH CORE MIME.",
        version="1",
        lifespan=lifespan,
        middleware=[Middleware(RequestContextMiddleware, max_body_bytes=MAX_BODY_BYTES)],
    )
    app.state.sandbox = sandbox
    install_error_handlers(app)
    app.include_router(router)
    app.add_api_route("/metrics", metrics_response, include_in_schema=False)
    return app


def main() -> None:
    settings = load_settings(Settings, PROCESS)
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT, PROCESS)
    # A bounded graceful shutdown (see SHUTDOWN_GRACE_SECONDS), exit 0 on SIGTERM.
    serve(
        create_app(settings),
        host=settings.SANDBOX_HOST,
        port=settings.SANDBOX_PORT,
        grace=SHUTDOWN_GRACE_SECONDS,
    )


if __name__ == "__main__":
    main()
