"""How many members and sweeps go at once: two workers share one sweep without sending
a member twice, SWEEP_MEMBER_CONCURRENCY bounds a sweep's members in flight across
workers (1 = one after the other), and INGEST_QUEUE_CONCURRENCY bounds the sweeps
sending at once while a tenant's big sweep does not hold back other tenants' small
ones."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import sqlalchemy as sa
from arq.connections import ArqRedis

from eligibility_sweeps.models import eligibility_sweep_run
from eligibility_sweeps.redis_names import gate_prefix
from eligibility_sweeps.run.service import SWEEP_RUN_JOB, open_arq_pool, run_job_id
from eligibility_sweeps.worker import repository
from eligibility_sweeps.worker.jobs import SWEEP_SEND_JOB, send_job_id
from eligibility_sweeps.worker.roster import write_roster
from rcm_kit.db import database_url_for
from tests.conftest import TenantFactory, tenant_session
from tests.eligibility_sweeps.checks_support import make_world
from tests.eligibility_sweeps.supervisor.support import drop_jobs
from tests.eligibility_sweeps.worker.support import (
    VISIT,
    Roster,
    Workers,
    counts,
    make_roster,
    wait_for,
)
from tests.sandbox_support import SandboxClient


def most_at_once(requests: list[dict[str, Any]], seconds: float) -> int:
    """The most requests the sandbox held at once, each for ``seconds`` from its arrival
    (its configured latency: a lane's next 270 can only leave after an answer came)."""
    events: list[tuple[datetime, int]] = []
    for request in requests:
        start = datetime.fromisoformat(request["received_at"])
        events += [(start, 1), (start + timedelta(seconds=seconds), -1)]
    current = peak = 0
    for _, step in sorted(events):
        current += step
        peak = max(peak, current)
    return peak


async def test_two_workers_share_one_sweep(
    roster: Roster, workers: Workers, sandbox: SandboxClient
) -> None:
    await sandbox.configure(latency_ms=100)
    await roster.many("SHARED", 80)
    sweep_run_id = await roster.run()
    # Three jobs each: neither worker can hold the run's driver and all four lanes.
    options = {
        "SWEEP_MEMBER_CONCURRENCY": 8,
        "SWEEP_LANE_CONCURRENCY": 2,
        "SWEEPS_WORKER_MAX_JOBS": 3,
        "SWEEP_SEND_JOB_SECONDS": 0.3,
    }
    first = await workers.start(**options)
    second = await workers.start(**options)

    run = await roster.wait(sweep_run_id)

    assert run.status == "COMPLETED"
    assert counts(await roster.rows(sweep_run_id)) == {"RECEIVED": 80}
    assert first.claimed > 0
    assert second.claimed > 0
    assert first.claimed + second.claimed == 80
    requests = await sandbox.requests()
    assert len(requests) == 80
    assert len({r["subscriber_id"] for r in requests}) == 80
    assert most_at_once(requests, 0.1) <= 8


async def test_lanes_queued_together_spread_over_workers_with_room_for_all(
    roster: Roster, workers: Workers, sandbox: SandboxClient
) -> None:
    # A RUNNING run with its roster and all eight lanes already queued, as sweep.run
    # leaves them, before either worker polls. Each worker could run every lane (16 job
    # slots) and arq hands a worker every job it reads in one poll: the worker that polls
    # first must offer the lanes beyond its first back to the queue for the other.
    await sandbox.configure(latency_ms=50)
    await roster.many("SPREAD", 160)
    sweep_run_id = await roster.run(enqueue=False)
    options = {
        "SWEEP_MEMBER_CONCURRENCY": 16,
        "SWEEP_LANE_CONCURRENCY": 2,
        "SWEEP_SEND_JOB_SECONDS": 8,
    }
    settings = workers.settings(**options)
    async with tenant_session(roster.tenant) as session:
        await session.execute(
            sa.update(eligibility_sweep_run)
            .where(eligibility_sweep_run.c.sweep_run_id == sweep_run_id)
            .values(status="RUNNING", started_at=sa.func.now())
        )
        run = await repository.get_run(session, sweep_run_id)
        assert (await write_roster(session, run, at=datetime.now(UTC))).rows == 160
    for lane in range(settings.lanes):
        await roster.arq.enqueue_job(
            SWEEP_SEND_JOB,
            str(roster.tenant.tenant_id),
            str(sweep_run_id),
            lane,
            _job_id=send_job_id(roster.tenant.tenant_id, sweep_run_id, lane),
        )
    first, second = await asyncio.gather(workers.start(**options), workers.start(**options))

    run = await roster.wait(sweep_run_id)

    assert run.status == "COMPLETED"
    assert counts(await roster.rows(sweep_run_id)) == {"RECEIVED": 160}
    assert first.claimed + second.claimed == 160
    assert min(first.claimed, second.claimed) >= 16, (first.claimed, second.claimed)
    assert len(await sandbox.requests()) == 160


async def test_a_deployment_sharing_the_redis_takes_no_job_of_another(
    roster: Roster, workers: Workers, sandbox: SandboxClient, worker_redis: str, master_url: str
) -> None:
    # Staging beside production on one Redis: another master database, another queue.
    await roster.many("OWN", 2)
    sweep_run_id = await roster.run(enqueue=False)
    elsewhere = open_arq_pool(worker_redis, database_url_for(master_url, "rcm_elsewhere"))
    try:
        assert await elsewhere.enqueue_job(
            SWEEP_RUN_JOB,
            str(roster.tenant.tenant_id),
            str(sweep_run_id),
            _job_id=run_job_id(roster.tenant.tenant_id, sweep_run_id),
        )
        await workers.start()
        await asyncio.sleep(1.5)

        assert (await roster.get_run(sweep_run_id)).status == "QUEUED"
        assert await elsewhere.zcard(elsewhere.default_queue_name) == 1
        assert len(await sandbox.requests()) == 0
        await drop_jobs(elsewhere, roster.tenant)
    finally:
        await elsewhere.aclose()

    assert await roster.enqueue(sweep_run_id)
    run = await roster.wait(sweep_run_id)
    assert run.status == "COMPLETED"
    assert len(await sandbox.requests()) == 2


async def test_member_concurrency_one_sends_strictly_one_after_the_other(
    roster: Roster, workers: Workers, sandbox: SandboxClient
) -> None:
    await sandbox.configure(latency_ms=50)
    await roster.many("SERIAL", 6)
    sweep_run_id = await roster.run()
    await workers.start(SWEEP_MEMBER_CONCURRENCY=1)
    await workers.start(SWEEP_MEMBER_CONCURRENCY=1)

    run = await roster.wait(sweep_run_id)

    assert run.status == "COMPLETED"
    requests = await sandbox.requests()
    assert len(requests) == 6
    assert most_at_once(requests, 0.05) == 1


async def test_ingest_queue_concurrency_and_tenant_fairness(
    roster: Roster,
    workers: Workers,
    sandbox: SandboxClient,
    make_tenant: TenantFactory,
    api: httpx.AsyncClient,
    arq: ArqRedis,
    master_url: str,
) -> None:
    gate = gate_prefix(master_url)
    await sandbox.configure(latency_ms=200)
    other_tenant = await _roster(make_tenant, api, sandbox, arq)
    third_tenant = await _roster(make_tenant, api, sandbox, arq)
    await roster.many("BIG", 24)
    big = await roster.run(date_from=VISIT, date_to=VISIT, enqueue=False)
    later = VISIT + timedelta(days=2)
    await roster.many("NEXT", 2, day=later)
    second = await roster.run(date_from=later, date_to=later, enqueue=False)
    await other_tenant.many("SMALL", 2)
    small = await other_tenant.run(enqueue=False)
    await third_tenant.many("LATE", 2)
    late = await third_tenant.run(enqueue=False)
    await workers.start(INGEST_QUEUE_CONCURRENCY=2, SWEEP_MEMBER_CONCURRENCY=2)
    peak = _Peak(arq, gate)
    sampler = asyncio.create_task(peak.sample())
    try:
        await roster.enqueue(big)
        await roster.wait(big, lambda r: r.status == "RUNNING")
        await roster.enqueue(second)
        await _waiting(arq, gate, roster.tenant.tenant_id, second)
        await other_tenant.enqueue(small)
        await other_tenant.wait(small, lambda r: r.status != "QUEUED")
        await third_tenant.enqueue(late)

        runs = {
            "big": await roster.wait(big),
            "second": await roster.wait(second),
            "small": await other_tenant.wait(small),
            "late": await third_tenant.wait(late),
        }
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)

    assert {name: r.status for name, r in runs.items()} == dict.fromkeys(runs, "COMPLETED")
    assert peak.value == 2
    # The other tenant's small sweep ran beside the big one, and finished long before it,
    # although the big sweep's tenant had a run waiting ahead of it.
    assert runs["big"].started_at < runs["small"].started_at < runs["big"].completed_at
    assert runs["small"].completed_at < runs["big"].completed_at
    assert runs["small"].started_at < runs["second"].started_at
    # A sweep holds its slot until it has claimed its last member. The third tenant
    # waited for a free slot (two were taken), not for the big sweep.
    assert runs["late"].started_at >= await _last_claim(other_tenant, small)
    assert runs["late"].completed_at < runs["big"].completed_at
    # One sweep per tenant: the second waited for the big one although slots were free.
    assert runs["second"].started_at >= await _last_claim(roster, big)


async def _last_claim(roster: Roster, sweep_run_id: UUID) -> datetime:
    return max(row.claimed_at for row in (await roster.rows(sweep_run_id)).values())


async def _roster(
    make_tenant: TenantFactory, api: httpx.AsyncClient, sandbox: SandboxClient, arq: ArqRedis
) -> Roster:
    world = await make_world(make_tenant, api, sandbox)
    await world.add_partner()
    return await make_roster(world, arq)


async def _waiting(arq: ArqRedis, gate: str, tenant_id: UUID, sweep_run_id: UUID) -> None:
    holder = f"{tenant_id}:{sweep_run_id}"
    await wait_for(lambda: arq.zscore(f"{gate}:waiting", holder), _not_none, within=10)


_not_none: Callable[[Any], bool] = lambda value: value is not None  # noqa: E731


class _Peak:
    """The most sweeps holding a slot at once, sampled every 10 ms."""

    def __init__(self, arq: ArqRedis, gate: str) -> None:
        self.arq = arq
        self.gate = gate
        self.value = 0

    async def sample(self) -> None:
        while True:
            self.value = max(self.value, int(await self.arq.zcard(f"{self.gate}:leases")))
            await asyncio.sleep(0.01)
