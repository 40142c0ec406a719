"""Every query on trading partners and their payer routing.

Names are unique per tenant by ``uq_trading_partner_name``, decided inside a savepoint
rather than by a look-up before the write. "A payer has at most one ACTIVE partner"
spans two tables, so writers of routing take one transaction-scoped advisory lock
first (``lock_routing``) and then check.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.models import eligibility_check, trading_partner, trading_partner_payer
from eligibility_sweeps.trading_partner.credentials import credential_matches
from rcm_kit.pagination import SortKey, page_of, paginate
from rcm_reference.models import payer

partner = trading_partner
routes = trading_partner_payer
UNIQUE_NAME = "uq_trading_partner_name"
# Any constant shared by every writer of routing in a tenant's database.
_ROUTING_LOCK = 0x7470_726F_7574  # "tprout"

_LIST_KEYS = (SortKey(partner.c.name), SortKey(partner.c.trading_partner_id))


def _violates(error: IntegrityError, constraint: str) -> bool:
    cause = getattr(error.orig, "__cause__", None)
    name = getattr(cause, "constraint_name", None)  # asyncpg names it
    return name == constraint if name is not None else constraint in str(error.orig)


async def list_partners(
    session: AsyncSession, *, cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """A page of partners by name, then id."""
    statement = paginate(sa.select(partner), _LIST_KEYS, cursor=cursor, filters={}, limit=limit)
    rows = (await session.execute(statement)).all()
    return page_of(
        rows, limit=limit, key_values=lambda row: (row.name, row.trading_partner_id), filters={}
    )


async def get_partner(session: AsyncSession, trading_partner_id: UUID) -> Any | None:
    query = sa.select(partner).where(partner.c.trading_partner_id == trading_partner_id)
    return (await session.execute(query)).first()


async def lock_partner(session: AsyncSession, trading_partner_id: UUID) -> Any | None:
    """The stored partner, locked until the transaction ends."""
    query = (
        sa.select(partner)
        .where(partner.c.trading_partner_id == trading_partner_id)
        .with_for_update()
    )
    return (await session.execute(query)).first()


async def payers_of(session: AsyncSession, partner_ids: Iterable[UUID]) -> dict[UUID, list[Any]]:
    """``{trading_partner_id: [routing rows by payer_id]}`` for the given partners."""
    wanted = list(partner_ids)
    found: dict[UUID, list[Any]] = defaultdict(list)
    if not wanted:
        return found
    query = (
        sa.select(routes)
        .where(routes.c.trading_partner_id.in_(wanted))
        .order_by(routes.c.trading_partner_id, routes.c.payer_id)
    )
    for row in await session.execute(query):
        found[row.trading_partner_id].append(row)
    return found


async def partner_id_by_name(session: AsyncSession, name: str) -> UUID | None:
    query = sa.select(partner.c.trading_partner_id).where(partner.c.name == name)
    found: UUID | None = (await session.execute(query)).scalar()
    return found


async def insert_partner(session: AsyncSession, values: dict[str, Any]) -> UUID | None:
    """The new partner's id, or None when another partner has the name."""
    try:
        async with session.begin_nested():
            new_id: UUID = (
                await session.execute(
                    sa.insert(partner).values(values).returning(partner.c.trading_partner_id)
                )
            ).scalar_one()
    except IntegrityError as error:
        if _violates(error, UNIQUE_NAME):
            return None
        raise
    return new_id


async def update_partner(
    session: AsyncSession, trading_partner_id: UUID, values: dict[str, Any], *, at: datetime
) -> bool:
    """Apply ``values``; False when the new name is another partner's."""
    try:
        async with session.begin_nested():
            await session.execute(
                sa.update(partner)
                .where(partner.c.trading_partner_id == trading_partner_id)
                .values(**values, updated_at=at)
            )
    except IntegrityError as error:
        if _violates(error, UNIQUE_NAME):
            return False
        raise
    return True


async def replace_payers(
    session: AsyncSession, trading_partner_id: UUID, rows: Sequence[dict[str, Any]]
) -> None:
    await session.execute(
        sa.delete(routes).where(routes.c.trading_partner_id == trading_partner_id)
    )
    if rows:
        await session.execute(
            sa.insert(routes), [{**row, "trading_partner_id": trading_partner_id} for row in rows]
        )


async def delete_partner(session: AsyncSession, trading_partner_id: UUID) -> bool:
    """Delete the partner and its routing; False when there was none."""
    result = await session.execute(
        sa.delete(partner)
        .where(partner.c.trading_partner_id == trading_partner_id)
        .returning(partner.c.trading_partner_id)
    )
    return result.first() is not None


async def has_checks(session: AsyncSession, trading_partner_id: UUID) -> bool:
    query = sa.select(
        sa.exists().where(eligibility_check.c.trading_partner_id == trading_partner_id)
    )
    return bool((await session.execute(query)).scalar())


async def lock_routing(session: AsyncSession) -> None:
    """Serialise routing changes in this tenant until the transaction ends."""
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(_ROUTING_LOCK)))


async def routing_conflicts(
    session: AsyncSession, payer_ids: Sequence[UUID], *, excluding: UUID | None
) -> list[Any]:
    """ACTIVE partners other than ``excluding`` that already route one of ``payer_ids``:
    ``payer_id``, ``payer_code``, ``trading_partner_id`` and ``name``, by payer code."""
    if not payer_ids:
        return []
    query = (
        sa.select(
            routes.c.payer_id, payer.c.payer_code, partner.c.trading_partner_id, partner.c.name
        )
        .join(partner, partner.c.trading_partner_id == routes.c.trading_partner_id)
        .join(payer, payer.c.payer_id == routes.c.payer_id)
        .where(routes.c.payer_id.in_(list(payer_ids)), partner.c.active)
        .order_by(payer.c.payer_code, partner.c.name)
    )
    if excluding is not None:
        query = query.where(partner.c.trading_partner_id != excluding)
    return list((await session.execute(query)).all())


async def set_inbound_credential(
    session: AsyncSession, trading_partner_id: UUID, credential_hash: str, *, at: datetime
) -> None:
    await session.execute(
        sa.update(partner)
        .where(partner.c.trading_partner_id == trading_partner_id)
        .values(
            inbound_credential_hash=credential_hash,
            inbound_credential_created_at=at,
            updated_at=at,
        )
    )


async def verify_inbound_credential(
    session: AsyncSession, trading_partner_id: UUID, presented: str
) -> bool:
    """Whether ``presented`` is the partner's current inbound credential (constant-time
    comparison of digests). An inactive partner's credential still works: a 271 for a
    check sent before the partner was paused must still land."""
    query = sa.select(partner.c.inbound_credential_hash).where(
        partner.c.trading_partner_id == trading_partner_id
    )
    stored: str | None = (await session.execute(query)).scalar()
    return credential_matches(presented, stored)
