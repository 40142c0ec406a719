"""The reconciler against real PostgreSQL and Redis: runs left QUEUED or RUNNING without a
live arq job get their job again; runs with a live job, fresh runs and finished runs are
left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from arq.constants import in_progress_key_prefix, job_key_prefix
from redis.asyncio import Redis

from eligibility_sweeps.run.service import enqueue_run, run_job_id
from rcm_kit.clock import FixedClock
from tests.eligibility_sweeps.supervisor.support import Cluster, add_run, job_exists

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


async def test_runs_without_a_live_job_are_enqueued_again_and_live_ones_are_left_alone(
    cluster: Cluster, redis: Redis
) -> None:
    tenant = await cluster.tenant()
    old = NOW - timedelta(minutes=10)
    lost = await add_run(tenant, "QUEUED", at=old)  # its enqueue never happened
    dead = await add_run(tenant, "RUNNING", at=old)  # arq gave up on its job
    queued = await add_run(tenant, "QUEUED", at=old)  # its job waits in the queue
    held = await add_run(tenant, "RUNNING", at=old)  # a worker holds its job
    fresh = await add_run(tenant, "QUEUED", at=NOW - timedelta(seconds=5))  # being enqueued
    done = await add_run(tenant, "COMPLETED", at=old)
    supervisor = cluster.supervisor(FixedClock(NOW), SWEEP_RECONCILE_GRACE_SECONDS=60)
    assert await enqueue_run(supervisor.arq, tenant.tenant_id, queued)
    held_job = run_job_id(tenant.tenant_id, held)
    await redis.set(in_progress_key_prefix + held_job, b"1", px=60_000)
    queued_job = await redis.get(job_key_prefix + run_job_id(tenant.tenant_id, queued))

    enqueued = await supervisor.reconcile()
    again = await supervisor.reconcile()

    assert sorted(enqueued) == sorted([(tenant.tenant_id, lost), (tenant.tenant_id, dead)])
    assert again == [], "a job enqueued by the reconciler is live"
    for run_id in (lost, dead):
        assert await job_exists(redis, tenant, run_id)
    for run_id in (held, fresh, done):
        assert not await job_exists(redis, tenant, run_id)
    assert await redis.get(job_key_prefix + run_job_id(tenant.tenant_id, queued)) == queued_job
    await redis.delete(in_progress_key_prefix + held_job)


async def test_a_run_whose_enqueue_failed_at_firing_is_picked_up_after_the_grace(
    cluster: Cluster, redis: Redis
) -> None:
    tenant = await cluster.tenant()
    clock = FixedClock(NOW - timedelta(minutes=5))
    supervisor = cluster.supervisor(clock, SWEEP_RECONCILE_GRACE_SECONDS=60)
    run_id = await add_run(tenant, "QUEUED", at=clock.now())  # committed; Redis was down

    within_grace = await supervisor.reconcile(NOW - timedelta(minutes=4, seconds=30))
    clock.instant = NOW
    report = await supervisor.tick()  # the first tick reconciles

    assert within_grace == []
    assert report.reconciled == [(tenant.tenant_id, run_id)]
    assert await job_exists(redis, tenant, run_id)
