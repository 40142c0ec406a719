"""The eligibility-sweeps API (``sweeps-api``)."""

from __future__ import annotations

from fastapi import FastAPI

from eligibility_sweeps.check.endpoints import router as check_router
from eligibility_sweeps.check.runtime import build_pipeline
from eligibility_sweeps.config import Settings
from eligibility_sweeps.member.endpoints import router as member_router
from eligibility_sweeps.reference.endpoints import router as reference_router
from eligibility_sweeps.run.endpoints import ARQ_POOL
from eligibility_sweeps.run.endpoints import router as run_router
from eligibility_sweeps.run.service import open_arq_pool
from eligibility_sweeps.schedule.endpoints import router as schedule_router
from eligibility_sweeps.trading_partner.endpoints import router as trading_partner_router
from rcm_kit.clock import Clock
from rcm_kit.logging import configure_logging
from rcm_kit.service import Runtime, create_service_app
from rcm_kit.settings import load_settings
from rcm_kit.web import serve

PROCESS = "sweeps-api"


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or load_settings(Settings, PROCESS)

    async def start(runtime: Runtime) -> None:
        runtime.extras["checks"] = build_pipeline(settings, runtime)
        runtime.extras[ARQ_POOL] = arq_pool = open_arq_pool(
            settings.REDIS_URL, settings.DATABASE_URL
        )
        runtime.closers.append(arq_pool.aclose)

    return create_service_app(
        title="Eligibility sweeps",
        description="Batches of X12 270 eligibility inquiries and their exception queue.",
        settings=settings,
        routers=[
            reference_router,
            member_router,
            check_router,
            trading_partner_router,
            run_router,
            schedule_router,
        ],
        app_name=PROCESS,
        clock=clock,
        on_startup=start,
    )


def main() -> None:
    settings = load_settings(Settings, PROCESS)
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT, PROCESS)
    serve(create_app(settings), host=settings.SWEEPS_API_HOST, port=settings.SWEEPS_API_PORT)


if __name__ == "__main__":
    main()
