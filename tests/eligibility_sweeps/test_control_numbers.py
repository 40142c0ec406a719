"""X12 control numbers are unique per trading partner across concurrent workers and
restarts, wrap at the ISA13 maximum, and go with their partner; trace numbers are unique."""

from __future__ import annotations

import asyncio
import re
import secrets
from uuid import UUID

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from eligibility_sweeps.models import MAX_CONTROL_NUMBER, control_number_sequence, trading_partner
from eligibility_sweeps.trading_partner.control_numbers import (
    ControlNumbers,
    new_trace_number,
    next_control_numbers,
)
from rcm_kit.db import create_engine, unit_of_work
from rcm_kit.tenancy import Tenant
from tests.conftest import TenantFactory, tenant_session
from tests.eligibility_sweeps.factories import add_trading_partner

WORKERS = 5
ALLOCATIONS = 50


@pytest.fixture(scope="module")
async def tenant(make_tenant: TenantFactory) -> Tenant:
    return await make_tenant()


@pytest.fixture
async def partner(tenant: Tenant) -> UUID:
    async with tenant_session(tenant) as session:
        return await add_trading_partner(session, f"partner-{secrets.token_hex(4)}")


async def allocate(engine: AsyncEngine, trading_partner_id: UUID) -> ControlNumbers:
    """One committed allocation, as a worker makes it before sending a 270."""
    async with unit_of_work(async_sessionmaker(engine)) as session:
        return await next_control_numbers(session, trading_partner_id)


async def allocate_once(tenant: Tenant, trading_partner_id: UUID) -> int:
    """An allocation from a fresh engine: what a restarted process sees."""
    engine = create_engine(tenant.database_url, pool_size=1, app_name="tests")
    try:
        numbers = await allocate(engine, trading_partner_id)
    finally:
        await engine.dispose()
    assert numbers.interchange == numbers.group == numbers.transaction
    return numbers.interchange


async def set_last_value(tenant: Tenant, trading_partner_id: UUID, value: int) -> None:
    async with tenant_session(tenant) as session:
        await session.execute(
            sa.update(control_number_sequence)
            .where(control_number_sequence.c.trading_partner_id == trading_partner_id)
            .values(last_value=value)
        )


async def test_first_allocation_starts_at_one(tenant: Tenant, partner: UUID) -> None:
    assert await allocate_once(tenant, partner) == 1
    assert await allocate_once(tenant, partner) == 2


async def test_concurrent_workers_never_share_a_number(tenant: Tenant, partner: UUID) -> None:
    before = await allocate_once(tenant, partner)
    engines = [
        create_engine(tenant.database_url, pool_size=ALLOCATIONS // WORKERS, app_name="tests")
        for _ in range(WORKERS)
    ]
    try:
        results = await asyncio.gather(
            *(allocate(engines[i % WORKERS], partner) for i in range(ALLOCATIONS))
        )
    finally:
        await asyncio.gather(*(engine.dispose() for engine in engines))

    numbers = sorted(r.interchange for r in results)
    assert all(r.interchange == r.group == r.transaction for r in results)
    # Every allocation committed, so the numbers are distinct and without gaps.
    assert numbers == list(range(before + 1, before + 1 + ALLOCATIONS))


async def test_numbers_continue_after_a_restart(tenant: Tenant, partner: UUID) -> None:
    first = [await allocate_once(tenant, partner) for _ in range(3)]
    after_restart = await allocate_once(tenant, partner)
    assert first == [1, 2, 3]
    assert after_restart == 4


async def test_a_rolled_back_allocation_is_handed_out_again(tenant: Tenant, partner: UUID) -> None:
    """Why callers commit the allocation before sending: a rollback returns the number."""
    engine = create_engine(tenant.database_url, pool_size=1, app_name="tests")
    try:
        async with async_sessionmaker(engine)() as session:
            rolled_back = await next_control_numbers(session, partner)
            await session.rollback()
        again = await allocate(engine, partner)
    finally:
        await engine.dispose()
    assert again == rolled_back


async def test_numbers_wrap_to_one_after_the_maximum(tenant: Tenant, partner: UUID) -> None:
    await allocate_once(tenant, partner)
    await set_last_value(tenant, partner, MAX_CONTROL_NUMBER - 1)
    assert await allocate_once(tenant, partner) == MAX_CONTROL_NUMBER
    assert await allocate_once(tenant, partner) == 1
    assert await allocate_once(tenant, partner) == 2


async def test_partners_have_independent_sequences(tenant: Tenant) -> None:
    async with tenant_session(tenant) as session:
        one = await add_trading_partner(session, "independent-one")
        two = await add_trading_partner(session, "independent-two")
    assert [await allocate_once(tenant, one) for _ in range(3)] == [1, 2, 3]
    assert await allocate_once(tenant, two) == 1
    assert await allocate_once(tenant, one) == 4


async def test_deleting_a_partner_removes_its_sequence(tenant: Tenant, partner: UUID) -> None:
    await allocate_once(tenant, partner)
    async with tenant_session(tenant) as session:
        await session.execute(
            sa.delete(trading_partner).where(trading_partner.c.trading_partner_id == partner)
        )
    async with tenant_session(tenant) as session:
        left = await session.scalar(
            sa.select(sa.func.count())
            .select_from(control_number_sequence)
            .where(control_number_sequence.c.trading_partner_id == partner)
        )
    assert left == 0


async def test_trace_numbers_are_unique_and_x12_safe() -> None:
    traces = [new_trace_number() for _ in range(10_000)]
    assert len(set(traces)) == len(traces)
    assert all(re.fullmatch(r"[0-9A-F]{1,50}", trace) for trace in traces)
