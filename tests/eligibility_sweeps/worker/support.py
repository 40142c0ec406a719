"""What the sweep worker tests share: a tenant routed to the sandbox with members and
visits, runs created the way the API and the supervisor create them, and sweeps-worker
processes run in the test's event loop (or as a subprocess) on a Redis database of
their own.

The worker's Redis database is not the one the rest of the suite enqueues into (the API
under test puts its ``sweep.run`` jobs in the default one and no worker consumes them
there), and it is emptied before each test: slots, limits and jobs never leak between
tests.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID, uuid4

import sqlalchemy as sa
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix

from eligibility_sweeps.models import (
    RunTrigger,
    eligibility_check,
    eligibility_sweep_run,
    service_event,
    sweep_run_member,
)
from eligibility_sweeps.run.service import SWEEP_RUN_JOB, create_run, run_job_id
from eligibility_sweeps.worker.main import SweepsWorker
from eligibility_sweeps.worker.settings import WorkerSettings
from rcm_kit.clock import SystemClock
from tests.conftest import tenant_session
from tests.eligibility_sweeps.checks_support import SECRETS_KEY, World
from tests.eligibility_sweeps.factories import add_facility, add_member, add_policy

SWEEPS_WORKER = Path(sys.executable).parent / "sweeps-worker"
WORKER_REDIS_DB = 11
# Well inside the window of every run the tests create.
VISIT = date.today() + timedelta(days=3)


def worker_redis_url(redis_url: str, db: int = WORKER_REDIS_DB) -> str:
    parts = urlsplit(redis_url)
    return urlunsplit(parts._replace(path=f"/{db}"))


def worker_env(master_url: str, redis_url: str, **values: Any) -> dict[str, Any]:
    """WorkerSettings values for tests: quick ticks, polls and retries."""
    return {
        "DATABASE_URL": master_url,
        "REDIS_URL": redis_url,
        "SECRETS_KEY": SECRETS_KEY,
        "TENANT_CACHE_SECONDS": 0,
        "LOG_FORMAT": "console",
        "SWEEP_TICK_SECONDS": 0.2,
        "SWEEPS_WORKER_POLL_SECONDS": 0.02,
        "SWEEP_SEND_JOB_SECONDS": 2,
        "SWEEP_JOB_TIMEOUT_SECONDS": 70,
        "SWEEP_CLAIM_TIMEOUT_SECONDS": 120,
        "SWEEP_ANSWER_TIMEOUT_SECONDS": 3600,
        "SWEEP_RETRY_BASE_SECONDS": 0.05,
        "SWEEP_RETRY_MAX_SECONDS": 0.2,
        "SWEEP_SLOT_LEASE_SECONDS": 5,
        "SWEEPS_WORKER_SHUTDOWN_GRACE_SECONDS": 5,
        "PARTNER_BREAKER_COOLDOWN_SECONDS": 0.5,
        "PARTNER_RATE_WAIT_SECONDS": 10,
        **values,
    }


@dataclass
class OffsetClock:
    """The system clock moved by ``offset``: a worker that lives later than the others."""

    offset: timedelta

    def now(self) -> datetime:
        return SystemClock().now() + self.offset


@dataclass
class RunningWorker:
    """A SweepsWorker in the test's event loop."""

    worker: SweepsWorker
    task: asyncio.Task[None]

    @property
    def claimed(self) -> int:
        return self.worker.runtime.claimed_members

    async def stop(self) -> None:
        self.worker.stop()
        await self.task


@dataclass
class Workers:
    """Starts workers for one test and stops them all at its end."""

    master_url: str
    redis_url: str
    running: list[RunningWorker] = field(default_factory=list)

    def settings(self, **values: Any) -> WorkerSettings:
        return WorkerSettings(**worker_env(self.master_url, self.redis_url, **values))

    async def start(self, clock: Any = None, **values: Any) -> RunningWorker:
        worker = SweepsWorker(self.settings(**values), clock=clock)
        running = RunningWorker(worker, asyncio.create_task(worker.run()))
        self.running.append(running)
        return running

    async def stop_all(self) -> None:
        for running in self.running:
            if not running.task.done():
                await running.stop()
        self.running.clear()

    def env(self, **values: Any) -> dict[str, str]:
        """The environment of a ``sweeps-worker`` subprocess with these settings."""
        settings = worker_env(self.master_url, self.redis_url, **values)
        return {**os.environ, **{k: str(v) for k, v in settings.items()}}

    def spawn(self, log: Path, **values: Any) -> subprocess.Popen[bytes]:
        """A ``sweeps-worker`` process writing its log to ``log``."""
        with log.open("wb") as output:
            return subprocess.Popen(
                [str(SWEEPS_WORKER)],
                env=self.env(**values),
                stdout=subprocess.DEVNULL,
                stderr=output,
            )


@dataclass
class Roster:
    """A sweep's world: the tenant routed to the sandbox, its members and visits."""

    world: World
    arq: ArqRedis
    facility_id: UUID
    members: dict[str, UUID] = field(default_factory=dict)

    @property
    def tenant(self) -> Any:
        return self.world.tenant

    async def member(
        self,
        name: str,
        subscriber_id: str | None = None,
        *,
        visits: list[tuple[date, str]] | None = None,
        payer_ids: list[UUID] | None = None,
        facility_id: UUID | None = None,
        **policy: Any,
    ) -> UUID:
        """A member named ``name`` with a policy of each payer (the world's by default)
        under ``subscriber_id`` (default: ``name``, which the sandbox answers as
        SBX-ACTIVE unless it names a rule), and its visits ``(date, status)`` (default:
        one SCHEDULED visit at ``VISIT``)."""
        async with tenant_session(self.tenant) as session:
            member_id = await add_member(
                session, f"{name}-{uuid4().hex[:8]}", last_name=name.replace("-", " ")
            )
            for payer_id in payer_ids if payer_ids is not None else [self.world.payer_id]:
                await add_policy(
                    session,
                    member_id,
                    payer_id,
                    subscriber_id=subscriber_id or name,
                    **policy,
                )
            for day, status in visits if visits is not None else [(VISIT, "SCHEDULED")]:
                await session.execute(
                    sa.insert(service_event).values(
                        external_id=f"V-{uuid4().hex}",
                        member_id=member_id,
                        facility_id=facility_id or self.facility_id,
                        service_date=day,
                        status=status,
                    )
                )
        self.members[name] = member_id
        return member_id

    async def many(self, prefix: str, count: int, *, day: date = VISIT) -> list[UUID]:
        """``count`` members ``<prefix>-0001``... with a visit on ``day``, in one
        transaction (the sandbox answers each as SBX-ACTIVE)."""
        made = []
        async with tenant_session(self.tenant) as session:
            for number in range(1, count + 1):
                name = f"{prefix}-{number:04d}"
                member_id = await add_member(session, f"{name}-{uuid4().hex[:6]}")
                await add_policy(session, member_id, self.world.payer_id, subscriber_id=name)
                await session.execute(
                    sa.insert(service_event).values(
                        external_id=f"V-{uuid4().hex}",
                        member_id=member_id,
                        facility_id=self.facility_id,
                        service_date=day,
                        status="SCHEDULED",
                    )
                )
                self.members[name] = member_id
                made.append(member_id)
        return made

    async def run(
        self,
        *,
        date_from: date | None = None,
        date_to: date | None = None,
        payer_ids: list[UUID] | None = None,
        facility_id: UUID | None = None,
        enqueue: bool = True,
    ) -> UUID:
        """A QUEUED ad-hoc run over ``date_from..date_to`` (default: today and the next 7
        days), committed and then enqueued as the API does."""
        async with tenant_session(self.tenant) as session:
            sweep_run_id = await create_run(
                session,
                name="Nightly outpatient pre-check",
                trigger=RunTrigger.MANUAL,
                facility_id=facility_id,
                service_date_from=date_from or date.today(),
                service_date_to=date_to or date.today() + timedelta(days=7),
                payer_ids=payer_ids or [],
                at=datetime.now(UTC),
            )
        if enqueue:
            await self.enqueue(sweep_run_id)
        return sweep_run_id

    async def enqueue(self, sweep_run_id: UUID) -> bool:
        job = await self.arq.enqueue_job(
            SWEEP_RUN_JOB,
            str(self.tenant.tenant_id),
            str(sweep_run_id),
            _job_id=run_job_id(self.tenant.tenant_id, sweep_run_id),
        )
        return job is not None

    async def get_run(self, sweep_run_id: UUID) -> Any:
        async with tenant_session(self.tenant) as session:
            return (
                await session.execute(
                    sa.select(eligibility_sweep_run).where(
                        eligibility_sweep_run.c.sweep_run_id == sweep_run_id
                    )
                )
            ).one()

    async def rows(self, sweep_run_id: UUID) -> dict[UUID, Any]:
        """The run's member rows by member id."""
        async with tenant_session(self.tenant) as session:
            rows = (
                await session.execute(
                    sa.select(sweep_run_member).where(
                        sweep_run_member.c.sweep_run_id == sweep_run_id
                    )
                )
            ).all()
        return {row.member_id: row for row in rows}

    async def by_name(self, sweep_run_id: UUID) -> dict[str, Any]:
        rows = await self.rows(sweep_run_id)
        return {name: rows[m] for name, m in self.members.items() if m in rows}

    async def checks(self, sweep_run_id: UUID) -> list[Any]:
        async with tenant_session(self.tenant) as session:
            return list(
                (
                    await session.execute(
                        sa.select(eligibility_check)
                        .where(eligibility_check.c.sweep_run_id == sweep_run_id)
                        .order_by(eligibility_check.c.created_at)
                    )
                ).all()
            )

    async def wait(
        self,
        sweep_run_id: UUID,
        condition: Callable[[Any], bool] | None = None,
        *,
        within: float = 30.0,
    ) -> Any:
        """Poll the run until ``condition(run)`` (default: a final status)."""
        done = condition or (lambda r: r.status in ("COMPLETED", "CANCELLED", "FAILED"))
        return await wait_for(lambda: self.get_run(sweep_run_id), done, within=within)

    async def wait_members(
        self,
        sweep_run_id: UUID,
        condition: Callable[[dict[UUID, Any]], bool],
        *,
        within: float = 30.0,
    ) -> dict[UUID, Any]:
        return await wait_for(lambda: self.rows(sweep_run_id), condition, within=within)


async def wait_for(
    read: Callable[[], Awaitable[Any]], condition: Callable[[Any], bool], *, within: float
) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await read()
        if condition(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s: {value!r}")
        await asyncio.sleep(0.05)


async def make_roster(world: World, arq: ArqRedis) -> Roster:
    async with tenant_session(world.tenant) as session:
        facility_id = await add_facility(session, f"F{uuid4().hex[:6]}")
    return Roster(world, arq, facility_id)


def counts(rows: dict[Any, Any]) -> dict[str, int]:
    found: dict[str, int] = {}
    for row in rows.values():
        found[row.status] = found.get(row.status, 0) + 1
    return found


async def forget_in_progress(arq: ArqRedis, tenant_id: UUID) -> int:
    """Drop the tenant's arq in-progress keys: what arq's own expiry of them does once a
    dead worker's job timeout has passed (here without waiting for it)."""
    keys = [k async for k in arq.scan_iter(f"{in_progress_key_prefix}sweep.*:{tenant_id}:*")]
    if keys:
        await arq.delete(*keys)
    return len(keys)
