"""Every query on contracts, and the one definition of how a contract reads *today*.

An ACTIVE contract whose ``effective_to`` is before the tenant's today reads as EXPIRED.
The list rows, the ``status`` filter, the banner (``summary``) and the dispatcher's
``expiring_contracts`` all build on ``effective_status``, ``effectively_active`` and
``expiring_within`` below, with today passed in as a parameter (never ``now()`` in SQL),
so the banner always equals the list for the same window and tests can move the day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contract_registry.models import LEAD_DAYS, ContractStatus, fee_schedule, payer_contract
from contract_registry.sql import violates
from rcm_kit.pagination import SortKey, page_of, paginate
from rcm_reference.models import billing_entity, payer

contract = payer_contract
UNIQUE_NUMBER = "uq_payer_contract_payer_id_contract_number"
ACTIVE = ContractStatus.ACTIVE.value
EXPIRED = ContractStatus.EXPIRED.value

# effective_to ascending, open-ended (NULL) last, then id: the list's stated order.
_LIST_KEYS = (
    SortKey(contract.c.effective_to, nulls_last=True),
    SortKey(contract.c.contract_id),
)


def _day(value: date) -> sa.BindParameter[date]:
    return sa.literal(value, sa.Date)


def effective_status(today: date) -> sa.ColumnElement[str]:
    """The status a contract reads as on ``today``."""
    past_end = sa.and_(contract.c.status == ACTIVE, contract.c.effective_to < _day(today))
    return sa.case((past_end, EXPIRED), else_=contract.c.status)


def effectively_active(today: date) -> sa.ColumnElement[bool]:
    """Reads ACTIVE on ``today``: stored ACTIVE and not past its end."""
    return sa.and_(
        contract.c.status == ACTIVE,
        sa.or_(contract.c.effective_to.is_(None), contract.c.effective_to >= _day(today)),
    )


def expiring_within(today: date, days: int) -> sa.ColumnElement[bool]:
    """Reads ACTIVE and ends between ``today`` and ``today + days``, both included."""
    return sa.and_(
        contract.c.status == ACTIVE,
        contract.c.effective_to >= _day(today),
        contract.c.effective_to <= _day(today + timedelta(days=days)),
    )


def reads_as(status: ContractStatus, today: date) -> sa.ColumnElement[bool]:
    """``effective_status(today) == status``, written so indexes on status apply."""
    if status is ContractStatus.ACTIVE:
        return effectively_active(today)
    if status is ContractStatus.EXPIRED:
        return sa.or_(
            contract.c.status == EXPIRED,
            sa.and_(contract.c.status == ACTIVE, contract.c.effective_to < _day(today)),
        )
    return contract.c.status == status.value


@dataclass(frozen=True)
class ContractFilters:
    """The list's filters; the banner takes the same ones (without the window)."""

    payer_id: UUID | None = None
    billing_entity_id: UUID | None = None
    status: ContractStatus | None = None
    q: str | None = None
    expiring_within_days: int | None = None

    def digest(self) -> dict[str, Any]:
        """What a cursor is bound to."""
        return {
            "payer_id": self.payer_id,
            "billing_entity_id": self.billing_entity_id,
            "status": self.status.value if self.status else None,
            "q": self.q,
            "expiring_within_days": self.expiring_within_days,
        }

    def conditions(self, today: date) -> list[sa.ColumnElement[bool]]:
        where: list[sa.ColumnElement[bool]] = []
        if self.payer_id is not None:
            where.append(contract.c.payer_id == self.payer_id)
        if self.billing_entity_id is not None:
            where.append(contract.c.billing_entity_id == self.billing_entity_id)
        if self.status is not None:
            where.append(reads_as(self.status, today))
        if self.q:
            where.append(
                sa.or_(
                    contract.c.name.icontains(self.q, autoescape=True),
                    contract.c.contract_number.icontains(self.q, autoescape=True),
                )
            )
        if self.expiring_within_days is not None:
            where.append(expiring_within(today, self.expiring_within_days))
        return where


def _enriched(today: date) -> sa.Select[Any]:
    """Contracts joined with payer and billing entity names, as ``ContractRead`` reads them."""
    schedules = (
        sa.select(sa.func.count())
        .where(fee_schedule.c.contract_id == contract.c.contract_id)
        .scalar_subquery()
    )
    return sa.select(
        contract.c.contract_id,
        contract.c.payer_id,
        payer.c.name.label("payer_name"),
        contract.c.billing_entity_id,
        billing_entity.c.name.label("billing_entity_name"),
        contract.c.name,
        contract.c.contract_number,
        effective_status(today).label("status"),
        contract.c.status.label("stored_status"),
        contract.c.effective_from,
        contract.c.effective_to,
        (contract.c.effective_to - _day(today)).label("days_until_expiry"),
        schedules.label("fee_schedule_count"),
        contract.c.version,
        contract.c.updated_at,
    ).select_from(
        contract.join(payer, payer.c.payer_id == contract.c.payer_id).join(
            billing_entity,
            billing_entity.c.billing_entity_id == contract.c.billing_entity_id,
        )
    )


async def list_contracts(
    session: AsyncSession,
    *,
    today: date,
    filters: ContractFilters,
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """A page of enriched contracts by effective_to (open-ended last), then id."""
    query = _enriched(today).where(*filters.conditions(today))
    statement = paginate(query, _LIST_KEYS, cursor=cursor, filters=filters.digest(), limit=limit)
    rows = (await session.execute(statement)).all()
    return page_of(
        rows,
        limit=limit,
        key_values=lambda row: (row.effective_to, row.contract_id),
        filters=filters.digest(),
    )


async def summary(
    session: AsyncSession, *, today: date, filters: ContractFilters
) -> tuple[int, dict[int, int]]:
    """Contracts reading ACTIVE, and how many of them expire within each window."""
    row = (
        await session.execute(
            sa.select(
                sa.func.count().filter(effectively_active(today)),
                *(sa.func.count().filter(expiring_within(today, days)) for days in LEAD_DAYS),
            )
            .select_from(contract)
            .where(*filters.conditions(today))
        )
    ).one()
    return int(row[0]), {days: int(n) for days, n in zip(LEAD_DAYS, row[1:], strict=True)}


@dataclass(frozen=True)
class ExpiringContract:
    """A contract an expiry alert reports: reads ACTIVE and ends within the lead time."""

    contract_id: UUID
    payer_id: UUID
    payer_name: str
    billing_entity_id: UUID
    billing_entity_name: str
    name: str
    contract_number: str
    effective_to: date
    days_left: int


async def expiring_contracts(
    session: AsyncSession,
    *,
    today: date,
    within_days: int,
    payer_id: UUID | None,
    billing_entity_id: UUID | None,
    limit: int | None = None,
) -> list[ExpiringContract]:
    """Contracts in an alert's scope (None = all) expiring between today and
    today + ``within_days``, by effective_to then id: the same predicate as the list's
    ``expiring_within_days`` filter and the banner."""
    query = (
        _enriched(today)
        .where(
            *ContractFilters(
                payer_id=payer_id,
                billing_entity_id=billing_entity_id,
                expiring_within_days=within_days,
            ).conditions(today)
        )
        .order_by(contract.c.effective_to, contract.c.contract_id)
    )
    if limit is not None:
        query = query.limit(limit)
    rows = (await session.execute(query)).all()
    return [
        ExpiringContract(
            contract_id=row.contract_id,
            payer_id=row.payer_id,
            payer_name=row.payer_name,
            billing_entity_id=row.billing_entity_id,
            billing_entity_name=row.billing_entity_name,
            name=row.name,
            contract_number=row.contract_number,
            effective_to=row.effective_to,
            days_left=row.days_until_expiry,
        )
        for row in rows
    ]


async def get_contract(session: AsyncSession, contract_id: UUID, *, today: date) -> Any | None:
    """One enriched contract, or None."""
    return (
        await session.execute(_enriched(today).where(contract.c.contract_id == contract_id))
    ).first()


async def lock_contract(session: AsyncSession, contract_id: UUID, *, today: date) -> Any | None:
    """The stored row (with ``reads_as``), locked until the transaction ends, so two
    concurrent edits are serialized and the second sees the first one's version."""
    query = (
        sa.select(contract, effective_status(today).label("reads_as"))
        .where(contract.c.contract_id == contract_id)
        .with_for_update(of=contract)
    )
    return (await session.execute(query)).first()


async def contract_exists(session: AsyncSession, contract_id: UUID) -> bool:
    query = sa.select(sa.literal(True)).where(contract.c.contract_id == contract_id)
    return (await session.execute(query)).first() is not None


async def contract_id_by_number(
    session: AsyncSession, payer_id: UUID, contract_number: str
) -> UUID | None:
    query = sa.select(contract.c.contract_id).where(
        contract.c.payer_id == payer_id, contract.c.contract_number == contract_number
    )
    found: UUID | None = (await session.execute(query)).scalar()
    return found


async def insert_contract(session: AsyncSession, values: dict[str, Any]) -> UUID | None:
    """The new contract's id, or None when the payer already has this contract number."""
    try:
        async with session.begin_nested():
            new_id: UUID = (
                await session.execute(
                    sa.insert(contract).values(values).returning(contract.c.contract_id)
                )
            ).scalar_one()
    except IntegrityError as error:
        if violates(error, UNIQUE_NUMBER):
            return None
        raise
    return new_id


async def update_contract(
    session: AsyncSession, contract_id: UUID, values: dict[str, Any], *, at: datetime
) -> bool:
    """Apply ``values`` and bump the version; False when the new number is taken."""
    try:
        async with session.begin_nested():
            await session.execute(
                sa.update(contract)
                .where(contract.c.contract_id == contract_id)
                .values(**values, version=contract.c.version + 1, updated_at=at)
            )
    except IntegrityError as error:
        if violates(error, UNIQUE_NUMBER):
            return False
        raise
    return True


async def ids_by_payer_and_number(
    session: AsyncSession, payer_codes: Iterable[str]
) -> dict[tuple[str, str], UUID]:
    """``{(payer_code, contract_number): contract_id}`` for every contract of those payers."""
    wanted = sorted(set(payer_codes))
    if not wanted:
        return {}
    rows = await session.execute(
        sa.select(payer.c.payer_code, contract.c.contract_number, contract.c.contract_id)
        .join(payer, payer.c.payer_id == contract.c.payer_id)
        .where(payer.c.payer_code == sa.any_(sa.literal(wanted, ARRAY(sa.String))))
    )
    return {(row.payer_code, row.contract_number): row.contract_id for row in rows}
