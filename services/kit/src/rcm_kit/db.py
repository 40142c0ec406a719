"""Database engines: the master database, and one small pooled engine per tenant.

``TenantConnectionResolver`` is the only way code reaches a tenant database. It keeps
at most ``MAX_TENANT_ENGINES`` engines of ``TENANT_POOL_SIZE`` connections each and
disposes the least recently used one past that, so the connection count stays bounded
however many tenants there are. An engine that is in use when evicted is disposed once
its last session closes.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy import MetaData
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from rcm_kit.logging import get_logger

log = get_logger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def make_metadata(schema: str | None = None) -> MetaData:
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


def uuid_pk(name: str) -> sa.Column[Any]:
    """A UUID primary key the database fills (``gen_random_uuid()``, PostgreSQL 13+)."""
    return sa.Column(name, sa.Uuid, primary_key=True, server_default=sa.text("gen_random_uuid()"))


def timestamps() -> list[sa.Column[Any]]:
    """``created_at`` and ``updated_at``, set by the database on insert."""
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    ]


def create_engine(url: str, *, pool_size: int = 5, app_name: str = "rcm") -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"server_settings": {"application_name": app_name}},
    )


def database_url_for(base_url: str, database: str) -> str:
    """``base_url`` pointed at another database on the same server."""
    return make_url(base_url).set(database=database).render_as_string(hide_password=False)


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One transaction: commit when the block succeeds, roll back when it raises."""
    async with sessionmaker() as session, session.begin():
        yield session


@dataclass
class _Entry:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    in_use: int = 0
    evicted: bool = False


@dataclass
class TenantConnectionResolver:
    """Maps a tenant id to a cached async engine for that tenant's database."""

    pool_size: int = 5
    max_engines: int = 50
    app_name: str = "rcm"
    _entries: OrderedDict[UUID, _Entry] = field(default_factory=OrderedDict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def engine_count(self) -> int:
        return len(self._entries)

    @property
    def connection_bound(self) -> int:
        return self.pool_size * self.max_engines

    async def _entry(self, tenant_id: UUID, url: str) -> _Entry:
        async with self._lock:
            entry = self._entries.get(tenant_id)
            if entry is not None and entry.engine.url.render_as_string(hide_password=False) != url:
                await self._evict(tenant_id)
                entry = None
            if entry is None:
                engine = create_engine(url, pool_size=self.pool_size, app_name=self.app_name)
                entry = _Entry(engine, async_sessionmaker(engine, expire_on_commit=False))
                self._entries[tenant_id] = entry
                while len(self._entries) > self.max_engines:
                    await self._evict(next(iter(self._entries)))
            self._entries.move_to_end(tenant_id)
            entry.in_use += 1
            return entry

    async def _evict(self, tenant_id: UUID) -> None:
        entry = self._entries.pop(tenant_id)
        entry.evicted = True
        if entry.in_use == 0:
            await entry.engine.dispose()
        log.info("tenancy.engine_evicted", evicted_tenant_id=str(tenant_id))

    async def _release(self, entry: _Entry) -> None:
        entry.in_use -= 1
        if entry.evicted and entry.in_use == 0:
            await entry.engine.dispose()

    @asynccontextmanager
    async def session(self, tenant_id: UUID, url: str) -> AsyncIterator[AsyncSession]:
        """A session on the tenant's database (no transaction begun: see ``transaction``)."""
        entry = await self._entry(tenant_id, url)
        try:
            async with entry.sessionmaker() as session:
                yield session
        finally:
            await self._release(entry)

    @asynccontextmanager
    async def transaction(self, tenant_id: UUID, url: str) -> AsyncIterator[AsyncSession]:
        """One unit of work on the tenant's database: committed on success."""
        async with self.session(tenant_id, url) as session, session.begin():
            yield session

    async def dispose(self) -> None:
        async with self._lock:
            for tenant_id in list(self._entries):
                await self._evict(tenant_id)
