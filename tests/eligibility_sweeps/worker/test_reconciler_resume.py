"""A worker SIGKILLed mid-sweep whose jobs Redis then lost: only the supervisor's
reconciler can bring the run back. It enqueues the run's job again (once), a new worker
resumes the run, no member gets a second 270 (the sandbox counts them), and every
member ends in a final state: those queued at the kill RECEIVED, those in flight
FAILED ``Outcome unknown``, those already answered untouched.

``worker/test_cancel_and_crash.py`` resumes a killed worker's run through arq's own
retry of the dead job; this is the other path the product document's idempotency line
relies on, where the job itself is gone."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from eligibility_sweeps.models import sweep_run_member
from eligibility_sweeps.supervisor.reconcile import reconcile_tenant
from rcm_kit.db import TenantConnectionResolver, create_engine
from rcm_kit.tenancy import TenantDirectory
from tests.conftest import free_port, tenant_session
from tests.eligibility_sweeps.worker.support import OffsetClock, Roster, Workers, counts
from tests.sandbox_support import SandboxClient

CLAIM_TIMEOUT_SECONDS = 120
MEMBERS = 32


def reconciler_directory(master_url: str) -> TenantDirectory:
    """A directory of its own, as the supervisor process holds one."""
    return TenantDirectory(
        create_engine(master_url, pool_size=1, app_name="tests-reconciler"),
        TenantConnectionResolver(pool_size=1, max_engines=2, app_name="tests-reconciler"),
        cache_seconds=0,
    )


async def test_the_reconciler_resumes_a_killed_workers_lost_run_without_a_second_270(
    roster: Roster, workers: Workers, sandbox: SandboxClient, master_url: str, tmp_path: Path
) -> None:
    await sandbox.configure(latency_ms=300)
    await roster.many("LOST", MEMBERS)
    names = {member_id: name for name, member_id in roster.members.items()}
    sweep_run_id = await roster.run()
    process = workers.spawn(
        tmp_path / "worker.log",
        SWEEP_MEMBER_CONCURRENCY=8,
        SWEEP_LANE_CONCURRENCY=4,
        SWEEP_CLAIM_TIMEOUT_SECONDS=CLAIM_TIMEOUT_SECONDS,
        SWEEPS_WORKER_HEALTH_PORT=free_port(),
    )
    try:
        await roster.wait_members(
            sweep_run_id,
            lambda rows: (
                counts(rows).get("RECEIVED", 0) >= 4 and counts(rows).get("SUBMITTED", 0) >= 4
            ),
            within=30,
        )
    finally:
        process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait, 10)
    at_kill = await roster.rows(sweep_run_id)
    by_status = {
        status: {m for m, row in at_kill.items() if row.status == status}
        for status in ("QUEUED", "SUBMITTED", "RECEIVED")
    }
    assert by_status["QUEUED"], counts(at_kill)
    assert by_status["SUBMITTED"], counts(at_kill)

    directory = reconciler_directory(master_url)
    try:
        # The dead worker's job is still live for arq: the reconciler leaves it alone.
        assert (
            await reconcile_tenant(
                directory, roster.arq, roster.tenant, changed_before=datetime.now(UTC)
            )
            == []
        )
        # Redis loses every job (and the slots and limits with them).
        await roster.arq.flushdb()
        enqueued = await reconcile_tenant(
            directory, roster.arq, roster.tenant, changed_before=datetime.now(UTC)
        )
        again = await reconcile_tenant(
            directory, roster.arq, roster.tenant, changed_before=datetime.now(UTC)
        )
    finally:
        await directory.dispose()
    assert enqueued == [sweep_run_id]
    assert again == [], "the job the reconciler enqueued is live"

    # A worker that lives past the claim timeout: the dead worker's claims are stale.
    await workers.start(
        clock=OffsetClock(timedelta(seconds=CLAIM_TIMEOUT_SECONDS + 10)),
        SWEEP_CLAIM_TIMEOUT_SECONDS=CLAIM_TIMEOUT_SECONDS,
    )
    run = await roster.wait(sweep_run_id, within=30)

    assert run.status == "COMPLETED"
    async with tenant_session(roster.tenant) as session:
        written = (
            await session.execute(
                sa.select(sa.func.count()).where(sweep_run_member.c.sweep_run_id == sweep_run_id)
            )
        ).scalar_one()
    assert written == MEMBERS, "no member row was written twice"
    rows = await roster.rows(sweep_run_id)
    assert set(counts(rows)) <= {"RECEIVED", "FAILED"}
    checks = {c.check_id: c for c in await roster.checks(sweep_run_id)}
    for member_id in by_status["QUEUED"]:
        assert rows[member_id].status == "RECEIVED", names[member_id]
    for member_id in by_status["RECEIVED"]:
        assert rows[member_id].status == "RECEIVED", names[member_id]
        assert rows[member_id].check_ids == at_kill[member_id].check_ids
    for member_id in by_status["SUBMITTED"]:
        row = rows[member_id]
        assert row.status == "FAILED", names[member_id]
        assert row.check_ids == at_kill[member_id].check_ids
        [check_id] = row.check_ids
        trace = checks[check_id].trace_number
        assert row.failure_reason == f"Outcome unknown: 270 {trace} was interrupted"

    sent: dict[str, int] = {}
    for request in await sandbox.requests():
        sent[request["subscriber_id"]] = sent.get(request["subscriber_id"], 0) + 1
    assert max(sent.values()) == 1, sent
    # Every member answered got exactly its one 270; one interrupted may not have left.
    for member_id, row in rows.items():
        if row.status == "RECEIVED":
            assert sent.get(names[member_id]) == 1, names[member_id]
