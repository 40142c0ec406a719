"""Tenant provisioning and migrations across every tenant (the work behind ``rcm``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from rcm_kit import migrations
from rcm_kit.logging import get_logger
from rcm_kit.plugins import Plugin
from rcm_kit.tenancy import (
    Tenant,
    TenantStatus,
    tenant_database_name,
    tenant_from_row,
    tenant_table,
)

log = get_logger(__name__)

SLUG = re.compile(r"^[a-z][a-z0-9-]{1,39}$")


class ProvisioningError(Exception):
    pass


def check_timezone(timezone: str) -> str:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ProvisioningError(f"unknown time zone {timezone!r} (use an IANA name)") from None
    return timezone


async def ensure_database(server_url: str, database: str) -> bool:
    """Create ``database`` on the server of ``server_url`` unless it exists; True if created."""
    url = make_url(server_url)
    connection = await asyncpg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        database=url.database or "postgres",
    )
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if exists:
            return False
        try:
            await connection.execute(f'CREATE DATABASE "{database}"')
        except asyncpg.DuplicateDatabaseError:
            return False  # created by a concurrent run: fine
        return True
    finally:
        await connection.close()


def maintenance_url(url: str) -> str:
    """The same server's ``postgres`` database, from which others are created."""
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


async def drop_databases(server_url: str, prefix: str) -> list[str]:
    """Drop every database whose name starts with ``prefix`` (test and benchmark clean-up)."""
    url = make_url(server_url)
    connection = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database="postgres"
    )
    try:
        rows = await connection.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1",
            prefix.replace("_", r"\_") + "%",
        )
        for row in rows:
            await connection.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
    finally:
        await connection.close()
    return [row["datname"] for row in rows]


async def migrate_master(master_url: str, migrations_dir: Path) -> dict[str, Any]:
    await ensure_database(maintenance_url(master_url), make_url(master_url).database or "rcm")
    return await migrations.apply(master_url, [migrations.master_tree(migrations_dir)])


async def tenant_by_slug(master: AsyncEngine, slug: str) -> Tenant | None:
    async with master.connect() as conn:
        row = (
            await conn.execute(sa.select(tenant_table).where(tenant_table.c.slug == slug))
        ).first()
    return tenant_from_row(row, master.url.render_as_string(hide_password=False)) if row else None


async def create_tenant(
    master: AsyncEngine,
    plugins: list[Plugin],
    migrations_dir: Path,
    *,
    slug: str,
    name: str,
    timezone: str = "UTC",
) -> Tenant:
    """Create the database, bring it to head, register the tenant. Safe to re-run."""
    if not SLUG.match(slug):
        raise ProvisioningError(
            "slug must be 2-40 characters: lowercase letters, digits and '-', starting with a letter"
        )
    check_timezone(timezone)
    master_url = master.url.render_as_string(hide_password=False)
    existing = await tenant_by_slug(master, slug)
    database = existing.database_name if existing else tenant_database_name(master_url, slug)
    tenant_url = (
        existing.database_url
        if existing
        else make_url(master_url).set(database=database).render_as_string(hide_password=False)
    )
    await ensure_database(maintenance_url(tenant_url), database)
    await migrations.upgrade_tenant(tenant_url, migrations.tenant_trees(plugins, migrations_dir))
    if existing:
        return existing
    async with master.begin() as conn:
        await conn.execute(
            sa.dialects.postgresql.insert(tenant_table)
            .values(
                tenant_id=uuid4(), slug=slug, name=name, timezone=timezone, database_name=database
            )
            .on_conflict_do_nothing(index_elements=["slug"])
        )
    tenant = await tenant_by_slug(master, slug)
    assert tenant is not None
    log.info("tenant.created", created_tenant_id=str(tenant.tenant_id))
    return tenant


async def set_status(master: AsyncEngine, slug: str, status: TenantStatus) -> Tenant:
    async with master.begin() as conn:
        result = await conn.execute(
            sa.update(tenant_table)
            .where(tenant_table.c.slug == slug)
            .values(status=status.value, updated_at=sa.func.now())
        )
    if result.rowcount == 0:
        raise ProvisioningError(f"no tenant with slug {slug!r}")
    tenant = await tenant_by_slug(master, slug)
    assert tenant is not None
    return tenant


@dataclass
class MigrationReport:
    master: dict[str, Any] = field(default_factory=dict)
    tenants: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


async def migrate_all(
    master: AsyncEngine, plugins: list[Plugin], migrations_dir: Path
) -> MigrationReport:
    """Master, then every tenant (active or suspended); one tenant's failure stops no other."""
    report = MigrationReport()
    master_url = master.url.render_as_string(hide_password=False)
    report.master = await migrate_master(master_url, migrations_dir)
    trees = migrations.tenant_trees(plugins, migrations_dir)
    async with master.connect() as conn:
        rows = (await conn.execute(sa.select(tenant_table).order_by(tenant_table.c.slug))).all()
    for row in rows:
        tenant = tenant_from_row(row, master_url)
        try:
            await ensure_database(maintenance_url(tenant.database_url), tenant.database_name)
            report.tenants[tenant.slug] = await migrations.upgrade_tenant(
                tenant.database_url, trees
            )
        except Exception as error:
            report.failures[tenant.slug] = f"{type(error).__name__}: {error}"
            log.error(
                "tenant.migration_failed", failed_tenant_id=str(tenant.tenant_id), exc_info=error
            )
    return report
