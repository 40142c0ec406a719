"""Every query on expiry-alert subscriptions (their delivery history lives beside the
dispatcher).

One alert per ``(payer_id, billing_entity_id, lead_days)``, NULLs ("all") included: the
unique index ``uq_contract_expiry_alert_scope`` decides, inside a savepoint, never a
look-up before the insert, so two simultaneous creates cannot both succeed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contract_registry.models import contract_expiry_alert
from contract_registry.sql import nil_if_null, violates
from rcm_kit.importing import ImportStats, upsert
from rcm_kit.pagination import SortKey, page_of, paginate
from rcm_reference.models import billing_entity, payer

alert = contract_expiry_alert
UNIQUE_SCOPE = "uq_contract_expiry_alert_scope"
SCOPE_KEY = (
    nil_if_null(alert.c.payer_id),
    nil_if_null(alert.c.billing_entity_id),
    alert.c.lead_days,
)

# Oldest first, so a new alert lands at the end and never shifts a page being read.
_LIST_KEYS = (SortKey(alert.c.created_at), SortKey(alert.c.alert_id))


def _enriched() -> sa.Select[Any]:
    return sa.select(
        alert,
        payer.c.name.label("payer_name"),
        billing_entity.c.name.label("billing_entity_name"),
    ).select_from(
        alert.outerjoin(payer, payer.c.payer_id == alert.c.payer_id).outerjoin(
            billing_entity, billing_entity.c.billing_entity_id == alert.c.billing_entity_id
        )
    )


async def list_alerts(
    session: AsyncSession, *, cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """A page of alerts by created_at, then id."""
    statement = paginate(_enriched(), _LIST_KEYS, cursor=cursor, filters={}, limit=limit)
    rows = (await session.execute(statement)).all()
    return page_of(
        rows, limit=limit, key_values=lambda row: (row.created_at, row.alert_id), filters={}
    )


async def get_alert(session: AsyncSession, alert_id: UUID) -> Any | None:
    """One alert with its payer's and billing entity's names, or None."""
    return (await session.execute(_enriched().where(alert.c.alert_id == alert_id))).first()


async def lock_alert(session: AsyncSession, alert_id: UUID) -> Any | None:
    """The stored alert, locked until the transaction ends."""
    query = sa.select(alert).where(alert.c.alert_id == alert_id).with_for_update()
    return (await session.execute(query)).first()


async def alert_id_by_scope(
    session: AsyncSession, payer_id: UUID | None, billing_entity_id: UUID | None, lead_days: int
) -> UUID | None:
    """The alert holding this scope, NULLs compared equal (as the unique index does)."""
    query = sa.select(alert.c.alert_id).where(
        alert.c.payer_id.is_not_distinct_from(payer_id),
        alert.c.billing_entity_id.is_not_distinct_from(billing_entity_id),
        alert.c.lead_days == lead_days,
    )
    found: UUID | None = (await session.execute(query)).scalar()
    return found


async def insert_alert(session: AsyncSession, values: dict[str, Any]) -> UUID | None:
    """The new alert's id, or None when another alert holds the same scope."""
    try:
        async with session.begin_nested():
            new_id: UUID = (
                await session.execute(sa.insert(alert).values(values).returning(alert.c.alert_id))
            ).scalar_one()
    except IntegrityError as error:
        if violates(error, UNIQUE_SCOPE):
            return None
        raise
    return new_id


async def update_alert(
    session: AsyncSession, alert_id: UUID, values: dict[str, Any], *, at: datetime
) -> bool:
    """Apply ``values``; False when the new scope is another alert's."""
    try:
        async with session.begin_nested():
            await session.execute(
                sa.update(alert).where(alert.c.alert_id == alert_id).values(**values, updated_at=at)
            )
    except IntegrityError as error:
        if violates(error, UNIQUE_SCOPE):
            return False
        raise
    return True


async def delete_alert(session: AsyncSession, alert_id: UUID) -> bool:
    """Delete the alert (its delivery history goes with it); False when there was none."""
    result = await session.execute(
        sa.delete(alert).where(alert.c.alert_id == alert_id).returning(alert.c.alert_id)
    )
    return result.first() is not None


async def upsert_alerts(session: AsyncSession, values: Sequence[dict[str, Any]]) -> ImportStats:
    """By scope. Only recipients and subject are compared: a re-run never resumes an
    alert an operator paused, nor touches what the dispatcher recorded."""
    return await upsert(
        session, alert, values, key=list(SCOPE_KEY), compare=["recipients", "subject"]
    )
