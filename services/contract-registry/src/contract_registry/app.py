"""The contract-registry API (``contracts-api``)."""

from __future__ import annotations

from fastapi import FastAPI

from contract_registry.config import Settings
from contract_registry.reference.endpoints import router as reference_router
from rcm_kit.logging import configure_logging
from rcm_kit.service import create_service_app
from rcm_kit.settings import load_settings
from rcm_kit.web import serve

PROCESS = "contracts-api"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings, PROCESS)
    return create_service_app(
        title="Contract registry",
        description="Every payer contract of a tenant in one place, with expiry alerts.",
        settings=settings,
        routers=[reference_router],
        app_name=PROCESS,
    )


def main() -> None:
    settings = load_settings(Settings, PROCESS)
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT, PROCESS)
    serve(create_app(settings), host=settings.CONTRACTS_API_HOST, port=settings.CONTRACTS_API_PORT)


if __name__ == "__main__":
    main()
