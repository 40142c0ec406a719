"""Every query of the checks pipeline: what a 270 needs, and the check rows themselves."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.models import (
    CheckStatus,
    ServiceEventStatus,
    coverage_policy,
    eligibility_check,
    inbound_file,
    member,
    service_event,
    trading_partner,
    trading_partner_payer,
)
from rcm_kit.pagination import SortKey, page_of, paginate
from rcm_reference.models import billing_entity, facility, payer

check = eligibility_check
_HISTORY_KEYS = (
    SortKey(check.c.created_at, descending=True),
    SortKey(check.c.check_id, descending=True),
)
_NOT_VISITS = (ServiceEventStatus.CANCELLED.value, ServiceEventStatus.NO_SHOW.value)


def _policies_with_payer() -> sa.Select[Any]:
    return sa.select(
        coverage_policy,
        payer.c.payer_code,
        payer.c.name.label("payer_name"),
    ).join(payer, payer.c.payer_id == coverage_policy.c.payer_id)


def _active_on(day: date) -> sa.ColumnElement[bool]:
    return sa.and_(
        coverage_policy.c.effective_from <= day,
        sa.or_(coverage_policy.c.effective_to.is_(None), coverage_policy.c.effective_to >= day),
    )


async def get_member(session: AsyncSession, member_id: UUID) -> Any | None:
    return (await session.execute(sa.select(member).where(member.c.member_id == member_id))).first()


async def policy_of_member(
    session: AsyncSession, member_id: UUID, coverage_policy_id: UUID
) -> Any | None:
    query = _policies_with_payer().where(
        coverage_policy.c.coverage_policy_id == coverage_policy_id,
        coverage_policy.c.member_id == member_id,
    )
    return (await session.execute(query)).first()


async def active_policy(
    session: AsyncSession, member_id: UUID, day: date, payer_id: UUID | None
) -> Any | None:
    """The member's policy active on ``day`` (with ``payer_id`` when given) that comes
    first by priority; the newest effective one breaks a tie."""
    query = _policies_with_payer().where(coverage_policy.c.member_id == member_id, _active_on(day))
    if payer_id is not None:
        query = query.where(coverage_policy.c.payer_id == payer_id)
    query = query.order_by(
        coverage_policy.c.priority,
        coverage_policy.c.effective_from.desc(),
        coverage_policy.c.coverage_policy_id,
    ).limit(1)
    return (await session.execute(query)).first()


async def route(session: AsyncSession, payer_id: UUID) -> Any | None:
    """The ACTIVE partner that routes ``payer_id``, with the payer's own limits.

    The admin routes keep at most one active partner per payer; should two ever exist,
    the oldest wins so that every process picks the same one."""
    query = (
        sa.select(
            trading_partner,
            trading_partner_payer.c.max_requests_per_second.label("payer_max_rps"),
            trading_partner_payer.c.daily_request_cap.label("payer_daily_cap"),
        )
        .join(
            trading_partner_payer,
            trading_partner_payer.c.trading_partner_id == trading_partner.c.trading_partner_id,
        )
        .where(trading_partner_payer.c.payer_id == payer_id, trading_partner.c.active)
        .order_by(trading_partner.c.created_at, trading_partner.c.trading_partner_id)
        .limit(1)
    )
    return (await session.execute(query)).first()


async def first_routed_payer(session: AsyncSession, trading_partner_id: UUID) -> Any | None:
    """A payer the partner routes (the first by code): the connectivity probe asks it."""
    query = (
        sa.select(payer.c.payer_code, payer.c.name)
        .join(trading_partner_payer, trading_partner_payer.c.payer_id == payer.c.payer_id)
        .where(trading_partner_payer.c.trading_partner_id == trading_partner_id)
        .order_by(payer.c.payer_code)
        .limit(1)
    )
    return (await session.execute(query)).first()


async def provider(session: AsyncSession, member_id: UUID, day: date) -> Any | None:
    """The 2100B information receiver: the facility of the member's visit that day when
    it has an NPI, else the first billing entity (by code) that has one."""
    visit = (
        sa.select(facility.c.name, facility.c.npi)
        .join(service_event, service_event.c.facility_id == facility.c.facility_id)
        .where(
            service_event.c.member_id == member_id,
            service_event.c.service_date == day,
            service_event.c.status.not_in(_NOT_VISITS),
            facility.c.npi.is_not(None),
        )
        .order_by(service_event.c.created_at, service_event.c.service_event_id)
        .limit(1)
    )
    found = (await session.execute(visit)).first()
    return found if found is not None else await billing_provider(session)


async def billing_provider(session: AsyncSession) -> Any | None:
    """The first billing entity (by code) with an NPI: its name and NPI."""
    entity = (
        sa.select(billing_entity.c.name, billing_entity.c.npi)
        .where(billing_entity.c.npi.is_not(None))
        .order_by(billing_entity.c.billing_entity_code)
        .limit(1)
    )
    return (await session.execute(entity)).first()


async def organisation_ein(session: AsyncSession) -> str | None:
    """The EIN that makes TRN03 (``1`` + EIN): the first billing entity with a tax id."""
    query = (
        sa.select(billing_entity.c.tax_id)
        .where(billing_entity.c.tax_id.is_not(None))
        .order_by(billing_entity.c.billing_entity_code)
        .limit(1)
    )
    value: str | None = (await session.execute(query)).scalar()
    return value


async def insert_check(session: AsyncSession, values: dict[str, Any]) -> UUID:
    result = await session.execute(sa.insert(check).values(**values).returning(check.c.check_id))
    check_id: UUID = result.scalar_one()
    return check_id


async def update_check(session: AsyncSession, check_id: UUID, values: dict[str, Any]) -> None:
    await session.execute(
        sa.update(check)
        .where(check.c.check_id == check_id)
        .values(**values, updated_at=sa.func.now())
    )


async def settle(
    session: AsyncSession, check_id: UUID, values: dict[str, Any], *, at: datetime
) -> bool:
    """Apply an answer to a check still SUBMITTED; False when another path (the
    real-time reply or an inbound file) settled it first. One statement, so the two
    paths can never both apply."""
    result = await session.execute(
        sa.update(check)
        .where(check.c.check_id == check_id, check.c.status == CheckStatus.SUBMITTED.value)
        .values(**values, updated_at=at)
        .returning(check.c.check_id)
    )
    return result.first() is not None


async def get_check(session: AsyncSession, check_id: UUID) -> Any | None:
    query = _with_payer().where(check.c.check_id == check_id)
    return (await session.execute(query)).first()


def _with_payer() -> sa.Select[Any]:
    return sa.select(check, payer.c.payer_code).join(payer, payer.c.payer_id == check.c.payer_id)


async def history(
    session: AsyncSession, member_id: UUID | None, *, cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """A member's checks (or everyone's), newest first."""
    filters = {"member_id": str(member_id) if member_id else None}
    query = _with_payer()
    if member_id is not None:
        query = query.where(check.c.member_id == member_id)
    statement = paginate(query, _HISTORY_KEYS, cursor=cursor, filters=filters, limit=limit)
    rows = (await session.execute(statement)).all()
    return page_of(
        rows,
        limit=limit,
        key_values=lambda row: (row.created_at, row.check_id),
        filters=filters,
    )


async def previous_identity(
    session: AsyncSession, *, member_id: UUID, payer_id: UUID, before: UUID
) -> dict[str, Any] | None:
    """What the payer said in the member's latest RECEIVED check with this payer, other
    than ``before`` (the check being settled)."""
    query = (
        sa.select(check.c.identity)
        .where(
            check.c.member_id == member_id,
            check.c.payer_id == payer_id,
            check.c.status == CheckStatus.RECEIVED.value,
            check.c.check_id != before,
            check.c.identity.is_not(None),
        )
        .order_by(check.c.received_at.desc(), check.c.check_id.desc())
        .limit(1)
    )
    identity: dict[str, Any] | None = (await session.execute(query)).scalar()
    return identity


async def by_trace_numbers(
    session: AsyncSession, trace_numbers: list[str], trading_partner_id: UUID | None
) -> list[Any]:
    query = sa.select(check).where(check.c.trace_number.in_(trace_numbers))
    if trading_partner_id is not None:
        query = query.where(check.c.trading_partner_id == trading_partner_id)
    return list((await session.execute(query)).all())


async def by_control_number(
    session: AsyncSession, control_number: int, trading_partner_ids: list[UUID]
) -> list[Any]:
    """The checks a 999 or TA1 names: newest first, since numbers wrap after a billion."""
    query = (
        sa.select(check)
        .where(
            check.c.control_number == control_number,
            check.c.trading_partner_id.in_(trading_partner_ids),
        )
        .order_by(check.c.created_at.desc())
    )
    return list((await session.execute(query)).all())


async def partners_by_ids(session: AsyncSession, sender_id: str, receiver_id: str) -> list[UUID]:
    """Partners whose 999/TA1 would come from ``sender_id`` to ``receiver_id`` (the
    ISA06/ISA08 of the acknowledgment: their receiver id, our sender id)."""
    query = sa.select(trading_partner.c.trading_partner_id).where(
        sa.func.upper(trading_partner.c.receiver_id) == sender_id.upper(),
        sa.func.upper(trading_partner.c.sender_id) == receiver_id.upper(),
    )
    return list((await session.execute(query)).scalars())


_FILE_KEYS = (
    SortKey(inbound_file.c.received_at, descending=True),
    SortKey(inbound_file.c.inbound_file_id, descending=True),
)


async def inbound_files(
    session: AsyncSession, outcome: str | None, *, cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """Inbound files, newest first, without their bodies."""
    filters = {"outcome": outcome}
    query = sa.select(*(c for c in inbound_file.c if c.name not in ("body", "digest")))
    if outcome is not None:
        query = query.where(inbound_file.c.outcome == outcome)
    statement = paginate(query, _FILE_KEYS, cursor=cursor, filters=filters, limit=limit)
    rows = (await session.execute(statement)).all()
    return page_of(
        rows,
        limit=limit,
        key_values=lambda row: (row.received_at, row.inbound_file_id),
        filters=filters,
    )


async def get_inbound_file(session: AsyncSession, inbound_file_id: UUID) -> Any | None:
    query = sa.select(inbound_file).where(inbound_file.c.inbound_file_id == inbound_file_id)
    return (await session.execute(query)).first()
