"""The master database's tenant registry and the tenant-aware session resolver.

``master.tenant`` says which tenants exist, whether they are active, their time zone
and where their database lives. ``TenantDirectory`` reads it with a short cache (a
suspension takes effect within ``TENANT_CACHE_SECONDS``, at most 10 s) and hands out
sessions on the right database through one ``TenantConnectionResolver``.
"""

from __future__ import annotations

import enum
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from rcm_kit.db import TenantConnectionResolver, database_url_for, make_metadata
from rcm_kit.errors import Forbidden

master_metadata = make_metadata(schema="master")


class TenantStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"


tenant_table = sa.Table(
    "tenant",
    master_metadata,
    sa.Column("tenant_id", sa.Uuid, primary_key=True, default=uuid4),
    sa.Column("slug", sa.String(63), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, server_default=TenantStatus.ACTIVE.value),
    sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
    sa.Column("database_name", sa.String(63), nullable=False, unique=True),
    # A server DSN for tenants that live on another PostgreSQL server; null = the master's.
    sa.Column("database_server_url", sa.Text, nullable=True),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.CheckConstraint("status IN ('ACTIVE', 'SUSPENDED')", name="status"),
)


@dataclass(frozen=True)
class Tenant:
    tenant_id: UUID
    slug: str
    name: str
    status: TenantStatus
    timezone: str
    database_name: str
    database_url: str
    created_at: datetime

    @property
    def active(self) -> bool:
        return self.status is TenantStatus.ACTIVE


def tenant_from_row(row: sa.Row[tuple[object, ...]], master_url: str) -> Tenant:
    m = row._mapping
    server = m["database_server_url"] or master_url
    return Tenant(
        tenant_id=m["tenant_id"],
        slug=m["slug"],
        name=m["name"],
        status=TenantStatus(m["status"]),
        timezone=m["timezone"],
        database_name=m["database_name"],
        database_url=database_url_for(server, m["database_name"]),
        created_at=m["created_at"],
    )


def tenant_database_name(master_url: str, slug: str) -> str:
    """Tenant databases are named after the master database, so test runs never collide."""
    master_db = make_url(master_url).database or "rcm"
    return f"{master_db}_{slug.replace('-', '_')}"[:63]


@dataclass
class TenantDirectory:
    """Reads tenants from the master database and opens sessions on their databases."""

    master_engine: AsyncEngine
    resolver: TenantConnectionResolver
    cache_seconds: float = 5.0
    _cache: dict[UUID, tuple[float, Tenant | None]] = field(default_factory=dict)

    @property
    def master_url(self) -> str:
        return self.master_engine.url.render_as_string(hide_password=False)

    async def get(self, tenant_id: UUID) -> Tenant | None:
        now = time.monotonic()
        cached = self._cache.get(tenant_id)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        async with self.master_engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(tenant_table).where(tenant_table.c.tenant_id == tenant_id)
                )
            ).first()
        tenant = tenant_from_row(row, self.master_url) if row is not None else None
        self._cache[tenant_id] = (now, tenant)
        return tenant

    async def require_active(self, tenant_id: UUID) -> Tenant:
        """The tenant, or 403 when it is unknown or suspended."""
        tenant = await self.get(tenant_id)
        if tenant is None:
            raise Forbidden("The token's tenant is not known here.")
        if not tenant.active:
            raise Forbidden("The token's tenant is suspended.")
        return tenant

    async def list(self, *, active_only: bool = False) -> list[Tenant]:
        query = sa.select(tenant_table).order_by(tenant_table.c.slug)
        if active_only:
            query = query.where(tenant_table.c.status == TenantStatus.ACTIVE.value)
        async with self.master_engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [tenant_from_row(row, self.master_url) for row in rows]

    @asynccontextmanager
    async def transaction(self, tenant: Tenant) -> AsyncIterator[AsyncSession]:
        async with self.resolver.transaction(tenant.tenant_id, tenant.database_url) as session:
            yield session

    @asynccontextmanager
    async def session(self, tenant: Tenant) -> AsyncIterator[AsyncSession]:
        async with self.resolver.session(tenant.tenant_id, tenant.database_url) as session:
            yield session

    async def dispose(self) -> None:
        await self.resolver.dispose()
        await self.master_engine.dispose()
