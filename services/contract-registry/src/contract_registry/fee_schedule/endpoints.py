"""The row drawer's fee schedules."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter

from contract_registry.fee_schedule import service
from contract_registry.fee_schedule.schemas import FeeScheduleRead
from rcm_kit.auth import CONFIG_READ
from rcm_kit.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from rcm_kit.service import TenantScope, tenant_scope

router = APIRouter(prefix="/api/v1/admin/contracts", tags=["contracts"])
Reader = Annotated[TenantScope, tenant_scope(CONFIG_READ)]


@router.get("/{contract_id}/fee-schedules", response_model=Page[FeeScheduleRead])
async def list_fee_schedules(
    contract_id: UUID, scope: Reader, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[FeeScheduleRead]:
    """The fee schedules linked to a contract, each with its number of lines, by name
    then `fee_schedule_id`. 404 when the contract does not exist in your organization.
    Needs `config.read`.
    """
    return await service.list_for_contract(scope.session, contract_id, cursor=cursor, limit=limit)
