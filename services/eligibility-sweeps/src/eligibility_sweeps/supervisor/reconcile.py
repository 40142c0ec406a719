"""The reconciler: runs left QUEUED or RUNNING without a live job get their job again.

A run's job can go missing: Redis was unreachable between the run's commit and its
enqueue (the API's or the supervisor's), Redis lost data, or arq gave up on the job
(``max_tries`` after worker deaths) while the run was not finished. Nothing else would
ever pick such a run up, so every ``SWEEP_RECONCILE_SECONDS`` each tenant's runs that
are QUEUED or RUNNING, and whose row has not changed for
``SWEEP_RECONCILE_GRACE_SECONDS`` (a run just created may be about to be enqueued by its
creator), are checked against arq's keys in Redis.

The rule for "live": arq's ``arq:job:<job id>`` exists (the job is queued, running, or
waiting to be retried after its worker died; arq deletes it when the job ends) or
``arq:in-progress:<job id>`` does (a worker holds the job). A run with neither gets
``enqueue_run`` again: the same deterministic job id, so two reconcilers (or a
reconciler and the API) racing enqueue one job, and ``sweep.run`` is idempotent (a run
that finished meanwhile returns at once).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix

from eligibility_sweeps.run.service import enqueue_run, run_job_id
from eligibility_sweeps.supervisor import repository
from rcm_kit.logging import get_logger
from rcm_kit.tenancy import Tenant, TenantDirectory

log = get_logger(__name__)

# Runs checked per tenant and pass; the rest wait for the next pass.
BATCH = 500


async def live_jobs(arq: ArqRedis, job_ids: Sequence[str]) -> list[bool]:
    """For each job id, whether arq holds a live job under it (one round trip)."""
    if not job_ids:
        return []
    async with arq.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.exists(job_key_prefix + job_id, in_progress_key_prefix + job_id)
        counts = await pipe.execute()
    return [int(count) > 0 for count in counts]


async def reconcile_tenant(
    directory: TenantDirectory,
    arq: ArqRedis,
    tenant: Tenant,
    *,
    changed_before: datetime,
) -> list[UUID]:
    """Enqueue the tenant's unattended runs that have no live job; their ids."""
    async with directory.transaction(tenant) as session:
        runs = await repository.unattended_runs(session, changed_before=changed_before, limit=BATCH)
    if not runs:
        return []
    alive = await live_jobs(arq, [run_job_id(tenant.tenant_id, r.sweep_run_id) for r in runs])
    enqueued: list[UUID] = []
    for found, live in zip(runs, alive, strict=True):
        if live:
            continue
        if await enqueue_run(arq, tenant.tenant_id, found.sweep_run_id):
            enqueued.append(found.sweep_run_id)
            log.warning(
                "supervisor.run_reconciled",
                tenant_id=str(tenant.tenant_id),
                sweep_run_id=str(found.sweep_run_id),
                run_status=found.status,
            )
    return enqueued
