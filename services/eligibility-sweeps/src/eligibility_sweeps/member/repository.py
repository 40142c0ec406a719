"""Every query on members and their coverage policies.

A member holds one policy per payer and subscriber id (``uq_coverage_policy_member_id_
payer_id_subscriber_id``), decided inside a savepoint rather than by a look-up before
the write.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.models import coverage_policy, member
from rcm_kit.pagination import SortKey, page_of, paginate
from rcm_reference.models import payer

UNIQUE_POLICY = "uq_coverage_policy_member_id_payer_id_subscriber_id"

_LIST_KEYS = (
    SortKey(member.c.last_name),
    SortKey(member.c.first_name),
    SortKey(member.c.member_id),
)


def _violates(error: IntegrityError, constraint: str) -> bool:
    cause = getattr(error.orig, "__cause__", None)
    name = getattr(cause, "constraint_name", None)  # asyncpg names it
    return name == constraint if name is not None else constraint in str(error.orig)


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


def _with_payer() -> sa.Select[Any]:
    return sa.select(
        coverage_policy,
        payer.c.payer_code,
        payer.c.name.label("payer_name"),
    ).join(payer, payer.c.payer_id == coverage_policy.c.payer_id)


async def coverage_policies(session: AsyncSession, member_id: UUID) -> list[Any]:
    """A member's policies with their payer: by priority, then the newest first."""
    query = (
        _with_payer()
        .where(coverage_policy.c.member_id == member_id)
        .order_by(
            coverage_policy.c.priority,
            coverage_policy.c.effective_from.desc(),
            coverage_policy.c.coverage_policy_id,
        )
    )
    return list((await session.execute(query)).all())


async def get_coverage_policy(session: AsyncSession, coverage_policy_id: UUID) -> Any | None:
    """One policy with its payer."""
    query = _with_payer().where(coverage_policy.c.coverage_policy_id == coverage_policy_id)
    return (await session.execute(query)).first()


async def member_exists(session: AsyncSession, member_id: UUID) -> bool:
    query = sa.select(sa.exists().where(member.c.member_id == member_id))
    return bool((await session.execute(query)).scalar())


async def insert_coverage_policy(session: AsyncSession, values: dict[str, Any]) -> UUID | None:
    """The new policy's id, or None when the member already holds a policy with this
    payer and subscriber id."""
    try:
        async with session.begin_nested():
            new_id: UUID = (
                await session.execute(
                    sa.insert(coverage_policy)
                    .values(values)
                    .returning(coverage_policy.c.coverage_policy_id)
                )
            ).scalar_one()
    except IntegrityError as error:
        if _violates(error, UNIQUE_POLICY):
            return None
        raise
    return new_id


async def coverage_policy_id_by_key(
    session: AsyncSession, member_id: UUID, payer_id: UUID, subscriber_id: str
) -> UUID | None:
    query = sa.select(coverage_policy.c.coverage_policy_id).where(
        coverage_policy.c.member_id == member_id,
        coverage_policy.c.payer_id == payer_id,
        coverage_policy.c.subscriber_id == subscriber_id,
    )
    found: UUID | None = (await session.execute(query)).scalar()
    return found


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
