"""Every query on members and their coverage policies."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.models import coverage_policy, member
from rcm_kit.pagination import SortKey, page_of, paginate
from rcm_reference.models import payer

_LIST_KEYS = (
    SortKey(member.c.last_name),
    SortKey(member.c.first_name),
    SortKey(member.c.member_id),
)


def _matches(q: str) -> sa.ColumnElement[bool]:
    """Every word of ``q`` appears, in any case, in a name or the external id."""
    return sa.and_(
        *(
            sa.or_(
                *(
                    column.icontains(word, autoescape=True)
                    for column in (member.c.last_name, member.c.first_name, member.c.external_id)
                )
            )
            for word in q.split()
        )
    )


async def list_members(
    session: AsyncSession,
    *,
    external_id: str | None,
    q: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """A page of members by last name, first name, then id."""
    filters = {"external_id": external_id, "q": q}
    query = sa.select(
        member.c.member_id,
        member.c.external_id,
        member.c.first_name,
        member.c.last_name,
        member.c.date_of_birth,
    )
    if external_id is not None:
        query = query.where(member.c.external_id == external_id)
    if q:
        query = query.where(_matches(q))
    statement = paginate(query, _LIST_KEYS, cursor=cursor, filters=filters, limit=limit)
    rows = (await session.execute(statement)).all()
    return page_of(
        rows,
        limit=limit,
        key_values=lambda row: (row.last_name, row.first_name, row.member_id),
        filters=filters,
    )


async def get_member(session: AsyncSession, member_id: UUID) -> Any | None:
    return (await session.execute(sa.select(member).where(member.c.member_id == member_id))).first()


async def coverage_policies(session: AsyncSession, member_id: UUID) -> list[Any]:
    """A member's policies with their payer: by priority, then the newest first."""
    query = (
        sa.select(
            coverage_policy,
            payer.c.payer_code,
            payer.c.name.label("payer_name"),
        )
        .join(payer, payer.c.payer_id == coverage_policy.c.payer_id)
        .where(coverage_policy.c.member_id == member_id)
        .order_by(
            coverage_policy.c.priority,
            coverage_policy.c.effective_from.desc(),
            coverage_policy.c.coverage_policy_id,
        )
    )
    return list((await session.execute(query)).all())


async def ids_by_external_id(session: AsyncSession, external_ids: Iterable[str]) -> dict[str, UUID]:
    """``{external_id: member_id}`` for those of ``external_ids`` that exist."""
    wanted = sorted(set(external_ids))
    if not wanted:
        return {}
    rows = await session.execute(
        sa.select(member.c.external_id, member.c.member_id).where(
            member.c.external_id == sa.any_(sa.literal(wanted, ARRAY(sa.String)))
        )
    )
    return {row.external_id: row.member_id for row in rows}
