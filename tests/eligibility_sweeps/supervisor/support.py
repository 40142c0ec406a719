"""What the supervisor tests share: a private master database with its own tenants (so a
tick sees only the test's tenants, and the heartbeat and change channel named after it
are the test's own), supervisors on their own engines, the sweeps API on the same
master, and small factories writing straight to a tenant's tables."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from arq.connections import ArqRedis
from arq.constants import job_key_prefix
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from eligibility_sweeps.models import eligibility_sweep_run, sweep_firing_skip, sweep_schedule
from eligibility_sweeps.run.service import open_arq_pool, run_job_id
from eligibility_sweeps.schedule import heartbeat
from eligibility_sweeps.schedule.cron import next_fire
from eligibility_sweeps.supervisor.config import SupervisorSettings
from eligibility_sweeps.supervisor.loop import Supervisor
from rcm_kit import provision
from rcm_kit.clock import Clock
from rcm_kit.db import TenantConnectionResolver, create_engine, database_url_for
from rcm_kit.plugins import Plugin
from rcm_kit.tenancy import Tenant, TenantDirectory
from tests.conftest import RunningServer, service_env, tenant_session


@dataclass
class Cluster:
    """A private master database: the tenants a test's supervisors tick over."""

    server_url: str
    redis_url: str
    plugins: list[Plugin]
    migrations_dir: Path
    name: str = field(default_factory=lambda: f"rcmt_{secrets.token_hex(4)}_s")
    master: AsyncEngine | None = None
    tenants: list[Tenant] = field(default_factory=list)
    _supervisors: list[Supervisor] = field(default_factory=list)
    _servers: list[RunningServer] = field(default_factory=list)

    @property
    def master_url(self) -> str:
        return database_url_for(self.server_url, self.name)

    async def open(self) -> Cluster:
        await provision.migrate_master(self.master_url, self.migrations_dir)
        self.master = create_engine(self.master_url, pool_size=2, app_name="tests")
        return self

    async def close(self) -> None:
        for server in self._servers:
            await server.stop()
        for supervisor in self._supervisors:
            supervisor.stop()
            await supervisor.directory.dispose()
            await supervisor.arq.aclose()
        redis = open_arq_pool(self.redis_url, self.master_url)
        try:
            for tenant in self.tenants:
                await drop_jobs(redis, tenant)
            await redis.delete(
                heartbeat.status_key(self.master_url), heartbeat.armed_key(self.master_url)
            )
        finally:
            await redis.aclose()
        if self.master is not None:
            await self.master.dispose()
        await provision.drop_databases(self.server_url, self.name)

    async def tenant(self, *, timezone: str = "UTC") -> Tenant:
        assert self.master is not None
        slug = f"t-{secrets.token_hex(3)}"
        made = await provision.create_tenant(
            self.master, self.plugins, self.migrations_dir, slug=slug, name=slug, timezone=timezone
        )
        self.tenants.append(made)
        return made

    def settings(self, **overrides: Any) -> SupervisorSettings:
        values = {
            **service_env(self.master_url, self.redis_url),
            # Tests reconcile by calling reconcile() (the first tick reconciles anyway).
            "SWEEP_RECONCILE_SECONDS": 3600,
            "SWEEP_SCHEDULER_RESYNC_SECONDS": 3600,
            **overrides,
        }
        return SupervisorSettings(**values)

    def supervisor(self, clock: Clock, **overrides: Any) -> Supervisor:
        """A supervisor with its own master engine, resolver and Redis pool, as a separate
        replica would have."""
        directory = TenantDirectory(
            create_engine(self.master_url, pool_size=2, app_name="tests-supervisor"),
            TenantConnectionResolver(pool_size=2, max_engines=10, app_name="tests-supervisor"),
            cache_seconds=0,
        )
        supervisor = Supervisor(
            directory=directory,
            arq=open_arq_pool(self.redis_url, self.master_url),
            settings=self.settings(**overrides),
            clock=clock,
        )
        self._supervisors.append(supervisor)
        return supervisor

    async def api(self, clock: Clock) -> RunningServer:
        """The sweeps API on this master database and ``clock``."""
        from eligibility_sweeps.app import create_app
        from eligibility_sweeps.config import Settings

        settings = Settings(**service_env(self.master_url, self.redis_url))
        server = await RunningServer(create_app(settings, clock=clock)).start()
        self._servers.append(server)
        return server


async def drop_jobs(pool: ArqRedis, tenant: Tenant) -> None:
    """Take a tenant's sweep.run jobs out of the shared Redis (out of ``pool``'s queue)."""
    pattern = f"{job_key_prefix}sweep.run:{tenant.tenant_id}:*"
    keys = [key async for key in pool.scan_iter(match=pattern)]
    if keys:
        await pool.delete(*keys)
        await pool.zrem(
            pool.default_queue_name, *(k.decode().removeprefix(job_key_prefix) for k in keys)
        )


async def job_exists(arq: ArqRedis | Redis, tenant: Tenant, sweep_run_id: UUID) -> bool:
    return bool(await arq.exists(job_key_prefix + run_job_id(tenant.tenant_id, sweep_run_id)))


# ---------------------------------------------------------------- factories


async def add_schedule(
    tenant: Tenant,
    cron: str = "0 2 * * *",
    timezone: str = "UTC",
    *,
    after: datetime | None = None,
    next_fire_at: datetime | None = None,
    window: tuple[int, int] = (0, 7),
    name: str = "Nightly pre-check",
    active: bool = True,
) -> UUID:
    """A schedule armed at ``next_fire_at``, or at its first fire time after ``after``."""
    if active and next_fire_at is None:
        assert after is not None, "give after or next_fire_at"
        next_fire_at = next_fire(cron, timezone, after)
    async with tenant_session(tenant) as session:
        schedule_id: UUID = (
            await session.execute(
                sa.insert(sweep_schedule)
                .values(
                    name=name,
                    cron=cron,
                    timezone=timezone,
                    window_start_days=window[0],
                    window_end_days=window[1],
                    active=active,
                    next_fire_at=next_fire_at if active else None,
                )
                .returning(sweep_schedule.c.schedule_id)
            )
        ).scalar_one()
    return schedule_id


async def update_schedule(tenant: Tenant, schedule_id: UUID, **values: Any) -> None:
    async with tenant_session(tenant) as session:
        await session.execute(
            sa.update(sweep_schedule)
            .where(sweep_schedule.c.schedule_id == schedule_id)
            .values(**values)
        )


async def delete_schedule(tenant: Tenant, schedule_id: UUID) -> None:
    async with tenant_session(tenant) as session:
        await session.execute(
            sa.delete(sweep_schedule).where(sweep_schedule.c.schedule_id == schedule_id)
        )


async def schedule_row(tenant: Tenant, schedule_id: UUID) -> Any:
    async with tenant_session(tenant) as session:
        return (
            await session.execute(
                sa.select(sweep_schedule).where(sweep_schedule.c.schedule_id == schedule_id)
            )
        ).one()


async def runs(tenant: Tenant, schedule_id: UUID | None = None) -> list[Any]:
    """The tenant's runs (of one schedule), by fire time."""
    query = sa.select(eligibility_sweep_run).order_by(
        eligibility_sweep_run.c.scheduled_for, eligibility_sweep_run.c.created_at
    )
    if schedule_id is not None:
        query = query.where(eligibility_sweep_run.c.schedule_id == schedule_id)
    async with tenant_session(tenant) as session:
        return list((await session.execute(query)).all())


async def skips(tenant: Tenant, schedule_id: UUID) -> list[Any]:
    async with tenant_session(tenant) as session:
        return list(
            (
                await session.execute(
                    sa.select(sweep_firing_skip)
                    .where(sweep_firing_skip.c.schedule_id == schedule_id)
                    .order_by(sweep_firing_skip.c.scheduled_for)
                )
            ).all()
        )


async def set_run_status(tenant: Tenant, status: str, sweep_run_id: UUID | None = None) -> None:
    """What a worker would do: move one run (or every live run) to ``status``."""
    query = sa.update(eligibility_sweep_run).values(status=status)
    if sweep_run_id is not None:
        query = query.where(eligibility_sweep_run.c.sweep_run_id == sweep_run_id)
    else:
        query = query.where(eligibility_sweep_run.c.status.in_(["QUEUED", "RUNNING"]))
    async with tenant_session(tenant) as session:
        await session.execute(query)


async def add_run(
    tenant: Tenant, status: str, *, at: datetime, schedule_id: UUID | None = None
) -> UUID:
    """A run row as the API or a firing would leave it, last changed ``at``."""
    async with tenant_session(tenant) as session:
        run_id: UUID = (
            await session.execute(
                sa.insert(eligibility_sweep_run)
                .values(
                    name="Ad hoc",
                    trigger="MANUAL",
                    status=status,
                    schedule_id=schedule_id,
                    service_date_from=date(2026, 3, 10),
                    service_date_to=date(2026, 3, 17),
                    created_at=at,
                    updated_at=at,
                )
                .returning(eligibility_sweep_run.c.sweep_run_id)
            )
        ).scalar_one()
    return run_id
