"""Small factories for sweeps tests: rows written straight to a tenant's tables."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.models import coverage_policy, member, trading_partner
from rcm_reference.models import facility, payer


async def _insert(session: AsyncSession, table: sa.Table, values: dict[str, Any]) -> UUID:
    id_column = table.primary_key.columns.values()[0]
    return (
        await session.execute(sa.insert(table).values(values).returning(id_column))
    ).scalar_one()


async def add_payer(session: AsyncSession, code: str, name: str = "") -> UUID:
    return await _insert(session, payer, {"payer_code": code, "name": name or f"Payer {code}"})


async def add_facility(session: AsyncSession, code: str) -> UUID:
    return await _insert(session, facility, {"facility_code": code, "name": f"Facility {code}"})


async def add_member(
    session: AsyncSession,
    external_id: str,
    *,
    first_name: str = "Ana",
    last_name: str = "Lee",
    date_of_birth: date = date(1980, 5, 17),
) -> UUID:
    return await _insert(
        session,
        member,
        {
            "external_id": external_id,
            "first_name": first_name,
            "last_name": last_name,
            "date_of_birth": date_of_birth,
        },
    )


async def add_policy(session: AsyncSession, member_id: UUID, payer_id: UUID, **values: Any) -> UUID:
    return await _insert(
        session,
        coverage_policy,
        {
            "member_id": member_id,
            "payer_id": payer_id,
            "subscriber_id": values.pop("subscriber_id", "S-1"),
            "effective_from": values.pop("effective_from", date(2025, 1, 1)),
            **values,
        },
    )


async def add_trading_partner(session: AsyncSession, name: str, **values: Any) -> UUID:
    return await _insert(
        session,
        trading_partner,
        {
            "name": name,
            "transport": values.pop("transport", "x12-http"),
            "endpoint_url": values.pop("endpoint_url", "http://127.0.0.1:9/x12"),
            "sender_id": values.pop("sender_id", "RCMSENDER"),
            "receiver_id": values.pop("receiver_id", "CLEARHOUSE"),
            **values,
        },
    )
