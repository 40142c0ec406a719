"""Reading a contract's fee schedules (the row drawer)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from contract_registry.contract import repository as contracts
from contract_registry.contract.service import ContractNotFound
from contract_registry.fee_schedule import repository
from contract_registry.fee_schedule.schemas import FeeScheduleRead
from rcm_kit.pagination import Page


async def list_for_contract(
    session: AsyncSession, contract_id: UUID, *, cursor: str | None, limit: int
) -> Page[FeeScheduleRead]:
    if not await contracts.contract_exists(session, contract_id):
        raise ContractNotFound("No contract with this contract_id in your organization.")
    rows, next_cursor = await repository.list_for_contract(
        session, contract_id, cursor=cursor, limit=limit
    )
    return Page(items=[FeeScheduleRead.model_validate(r) for r in rows], next_cursor=next_cursor)
