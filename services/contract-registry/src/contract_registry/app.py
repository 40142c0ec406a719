"""The contract-registry API (``contracts-api``)."""

from __future__ import annotations

from fastapi import FastAPI

from contract_registry.config import Settings
from contract_registry.contract.endpoints import admin as contracts_router
from contract_registry.contract.endpoints import payers as payer_contracts_router
from contract_registry.expiry_alert.delivery_endpoints import (
    router as alert_deliveries_router,
)
from contract_registry.expiry_alert.endpoints import router as alerts_router
from contract_registry.fee_schedule.endpoints import router as fee_schedules_router
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
        # Literal paths under /admin/contracts (summary, expiry-alerts/...) before
        # /admin/contracts/{contract_id}, which would otherwise take them for an id.
        routers=[
            reference_router,
            # Before the CRUD router: /expiry-alerts/dispatcher is not an {alert_id}.
            alert_deliveries_router,
            alerts_router,
            contracts_router,
            fee_schedules_router,
            payer_contracts_router,
        ],
        app_name=PROCESS,
    )


def main() -> None:
    settings = load_settings(Settings, PROCESS)
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT, PROCESS)
    serve(create_app(settings), host=settings.CONTRACTS_API_HOST, port=settings.CONTRACTS_API_PORT)


if __name__ == "__main__":
    main()
