"""Small factories for contract-registry tests: rows written straight to a tenant's tables."""

from __future__ import annotations

import secrets
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from contract_registry.models import (
    contract_expiry_alert,
    fee_schedule,
    fee_schedule_line,
    payer_contract,
)
from rcm_reference.models import billing_entity, payer


async def _insert(session: AsyncSession, table: sa.Table, values: dict[str, Any]) -> UUID:
    id_column = table.primary_key.columns.values()[0]
    new_id: UUID = (
        await session.execute(sa.insert(table).values(values).returning(id_column))
    ).scalar_one()
    return new_id


async def add_payer(session: AsyncSession, code: str = "", name: str = "") -> UUID:
    code = code or f"P{secrets.token_hex(3)}"
    return await _insert(session, payer, {"payer_code": code, "name": name or f"Payer {code}"})


async def add_billing_entity(session: AsyncSession, code: str = "", name: str = "") -> UUID:
    code = code or f"B{secrets.token_hex(3)}"
    return await _insert(
        session,
        billing_entity,
        {"billing_entity_code": code, "name": name or f"Billing entity {code}"},
    )


async def add_contract(
    session: AsyncSession,
    payer_id: UUID,
    billing_entity_id: UUID,
    *,
    effective_to: date | None = None,
    effective_from: date = date(2020, 1, 1),
    status: str = "ACTIVE",
    number: str = "",
    name: str = "Professional Services Agreement",
) -> UUID:
    return await _insert(
        session,
        payer_contract,
        {
            "payer_id": payer_id,
            "billing_entity_id": billing_entity_id,
            "name": name,
            "contract_number": number or f"C-{secrets.token_hex(4)}",
            "status": status,
            "effective_from": min(effective_from, effective_to or effective_from),
            "effective_to": effective_to,
        },
    )


async def add_fee_schedule(
    session: AsyncSession,
    contract_id: UUID | None,
    name: str,
    *,
    lines: int = 0,
    effective_from: date = date(2025, 1, 1),
) -> UUID:
    schedule_id = await _insert(
        session,
        fee_schedule,
        {"contract_id": contract_id, "name": name, "effective_from": effective_from},
    )
    for number in range(lines):
        await _insert(
            session,
            fee_schedule_line,
            {
                "fee_schedule_id": schedule_id,
                "procedure_code": f"{99201 + number}",
                "amount": Decimal("100.00") + number,
            },
        )
    return schedule_id


async def add_alert(
    session: AsyncSession,
    *,
    payer_id: UUID | None = None,
    billing_entity_id: UUID | None = None,
    lead_days: int = 30,
    recipients: tuple[str, ...] = ("ops@example.org",),
) -> UUID:
    return await _insert(
        session,
        contract_expiry_alert,
        {
            "payer_id": payer_id,
            "billing_entity_id": billing_entity_id,
            "lead_days": lead_days,
            "recipients": list(recipients),
            "subject": f"Contracts expiring within {lead_days} days",
        },
    )
