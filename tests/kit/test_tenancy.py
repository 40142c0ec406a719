"""Tenancy: the resolver keeps connections bounded; suspension is honoured; provisioning is safe."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from rcm_kit import provision
from rcm_kit.db import TenantConnectionResolver
from rcm_kit.plugins import Plugin
from rcm_kit.tenancy import TenantDirectory, TenantStatus
from tests.conftest import TenantFactory


async def _connections(engine: AsyncEngine, app_name: str) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :n"),
                    {"n": app_name},
                )
            ).scalar_one()
        )


async def test_more_tenants_than_engines_stay_within_the_connection_bound(
    make_tenant: TenantFactory, master_engine: AsyncEngine
) -> None:
    tenants = [await make_tenant() for _ in range(5)]
    app_name = f"resolver-{secrets.token_hex(3)}"
    resolver = TenantConnectionResolver(pool_size=2, max_engines=2, app_name=app_name)
    directory = TenantDirectory(master_engine, resolver, cache_seconds=0)
    peak = 0

    async def work(index: int) -> str:
        nonlocal peak
        tenant = tenants[index % len(tenants)]
        async with directory.session(tenant) as session:
            name = (await session.execute(sa.text("select current_database()"))).scalar_one()
            peak = max(peak, await _connections(master_engine, app_name))
            await asyncio.sleep(0.01)
            return str(name)

    try:
        for _ in range(3):
            names = await asyncio.gather(*(work(i) for i in range(15)))
            # Every session reached its own tenant's database...
            assert names == [tenants[i % 5].database_name for i in range(15)]
            # ...while engines and connections stayed bounded.
            assert resolver.engine_count <= 2
            assert await _connections(master_engine, app_name) <= resolver.connection_bound
        assert peak > 0
    finally:
        await resolver.dispose()
    assert await _connections(master_engine, app_name) == 0


async def test_suspension_takes_effect_within_the_cache_time(
    make_tenant: TenantFactory, master_engine: AsyncEngine
) -> None:
    tenant = await make_tenant()
    directory = TenantDirectory(master_engine, TenantConnectionResolver(), cache_seconds=0.3)
    assert (await directory.require_active(tenant.tenant_id)).slug == tenant.slug
    await provision.set_status(master_engine, tenant.slug, TenantStatus.SUSPENDED)
    await asyncio.sleep(0.35)
    with pytest.raises(Exception, match="suspended"):
        await directory.require_active(tenant.tenant_id)
    await provision.set_status(master_engine, tenant.slug, TenantStatus.ACTIVE)
    await asyncio.sleep(0.35)
    assert (await directory.require_active(tenant.tenant_id)).active


async def test_provisioning_twice_is_safe(
    master_engine: AsyncEngine, plugins: list[Plugin], migrations_dir: Path
) -> None:
    slug = f"twice-{secrets.token_hex(2)}"
    first = await provision.create_tenant(
        master_engine, plugins, migrations_dir, slug=slug, name="Twice", timezone="Europe/Paris"
    )
    again = await provision.create_tenant(
        master_engine, plugins, migrations_dir, slug=slug, name="Twice", timezone="Europe/Paris"
    )
    assert again.tenant_id == first.tenant_id
    assert again.timezone == "Europe/Paris"


@pytest.mark.parametrize(
    ("slug", "timezone", "message"),
    [("Bad Slug", "UTC", "slug"), ("ok-slug", "Mars/Olympus", "time zone")],
)
async def test_provisioning_refuses_bad_input(
    master_engine: AsyncEngine,
    plugins: list[Plugin],
    migrations_dir: Path,
    slug: str,
    timezone: str,
    message: str,
) -> None:
    with pytest.raises(provision.ProvisioningError, match=message):
        await provision.create_tenant(
            master_engine, plugins, migrations_dir, slug=slug, name="x", timezone=timezone
        )
