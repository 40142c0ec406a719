"""Run lifecycle and playbook rules no other test drives through a real worker:

- the roster's facility scope (API.md: "in the scope's dates (and facility)");
- a roster query that keeps failing: the run FAILED with ``error`` saying why (API.md);
- an idempotent re-fire: the same run's job looked at by several drivers at once, and
  again after the end, writes no duplicate member row and sends no second 270 (the
  product document's Idempotency line and its validation row);
- the troubleshooting table's fix for ``Cancelled by operator``: re-run with the same
  scope, and the skipped members get their 270 in the new run;
- the drain playbook: pausing a schedule leaves its run in flight draining to the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from arq.connections import ArqRedis
from arq.worker import Retry
from sqlalchemy.exc import IntegrityError

from eligibility_sweeps.models import service_event, sweep_run_member
from eligibility_sweeps.run.service import open_arq_pool
from eligibility_sweeps.worker.jobs import RUNTIME, sweep_run
from tests.conftest import auth, tenant_session
from tests.eligibility_sweeps.factories import add_facility
from tests.eligibility_sweeps.supervisor.support import drop_jobs
from tests.eligibility_sweeps.worker.support import VISIT, Roster, Workers, counts
from tests.sandbox_support import SandboxClient

BASE = "/api/v1/eligibility/sweeps"
RUNS = f"{BASE}/runs"
READ, WRITE = "eligibility.read", "eligibility.update"


@pytest.fixture
async def api_redis(redis_url: str, master_url: str) -> AsyncIterator[ArqRedis]:
    """The queue the API under test enqueues into (no worker consumes it)."""
    client = open_arq_pool(redis_url, master_url)
    yield client
    await client.aclose()


async def member_rows(roster: Roster, sweep_run_id: UUID) -> int:
    """Member rows of the run as stored (not keyed by member, so a duplicate shows)."""
    async with tenant_session(roster.tenant) as session:
        count: int = (
            await session.execute(
                sa.select(sa.func.count()).where(sweep_run_member.c.sweep_run_id == sweep_run_id)
            )
        ).scalar_one()
    return count


async def post(roster: Roster, path: str, json: Any = None) -> Any:
    return await roster.world.api.post(path, json=json, headers=auth(roster.tenant, WRITE))


async def get(roster: Roster, path: str) -> Any:
    return await roster.world.api.get(path, headers=auth(roster.tenant, READ))


async def test_the_roster_keeps_to_the_runs_facility(
    roster: Roster, workers: Workers, sandbox: SandboxClient
) -> None:
    async with tenant_session(roster.tenant) as session:
        other_facility = await add_facility(session, f"G{uuid4().hex[:6]}")
    await roster.member("HERE")
    await roster.member("ELSEWHERE", facility_id=other_facility)
    # Visits in both: its earliest visit in the run's facility is its service date.
    both = await roster.member("BOTH", visits=[(VISIT + timedelta(days=2), "SCHEDULED")])
    async with tenant_session(roster.tenant) as session:
        await session.execute(
            sa.insert(service_event).values(
                external_id=f"V-{uuid4().hex}",
                member_id=both,
                facility_id=other_facility,
                service_date=VISIT,
                status="SCHEDULED",
            )
        )
    one_facility = await roster.run(facility_id=roster.facility_id)
    await workers.start()
    assert (await roster.wait(one_facility)).status == "COMPLETED"
    every_facility = await roster.run()
    assert (await roster.wait(every_facility)).status == "COMPLETED"

    scoped = await roster.by_name(one_facility)
    assert {name: row.status for name, row in scoped.items()} == {
        "HERE": "RECEIVED",
        "BOTH": "RECEIVED",
    }
    assert scoped["BOTH"].service_date == VISIT + timedelta(days=2)
    tenant_wide = await roster.by_name(every_facility)
    assert set(tenant_wide) == {"HERE", "ELSEWHERE", "BOTH"}
    assert tenant_wide["BOTH"].service_date == VISIT
    assert len(await sandbox.requests("ELSEWHERE")) == 1
    assert len(await sandbox.requests("BOTH")) == 2


async def test_a_roster_query_that_keeps_failing_fails_the_run_saying_why(
    roster: Roster, workers: Workers, sandbox: SandboxClient
) -> None:
    await roster.member("NEVER-SENT")
    sweep_run_id = await roster.run()
    # The roster's first leg reads service.service_event: take it away in this tenant.
    async with tenant_session(roster.tenant) as session:
        await session.execute(sa.text("ALTER TABLE service.service_event RENAME TO gone"))
    try:
        await workers.start(SWEEP_ROSTER_ATTEMPTS=2, SWEEP_ROSTER_RETRY_SECONDS=0.05)
        run = await roster.wait(sweep_run_id)
    finally:
        async with tenant_session(roster.tenant) as session:
            await session.execute(sa.text("ALTER TABLE service.gone RENAME TO service_event"))

    assert run.status == "FAILED"
    assert run.error.startswith("Roster query failed after 2 attempts: "), run.error
    assert "service_event" in run.error
    assert run.roster_at is None
    assert run.completed_at is not None
    assert await member_rows(roster, sweep_run_id) == 0
    assert await sandbox.requests() == []
    answer = (await get(roster, f"{RUNS}/{sweep_run_id}")).json()
    assert (answer["status"], answer["error"]) == ("FAILED", run.error)
    # FAILED is final.
    refused = await post(roster, f"{RUNS}/{sweep_run_id}/cancel")
    assert refused.status_code == 409, refused.text
    await asyncio.sleep(0.5)  # a few of the worker's ticks
    assert (await roster.get_run(sweep_run_id)).status == "FAILED"


async def test_a_run_fired_again_and_again_writes_each_member_once_and_sends_once(
    roster: Roster, workers: Workers, sandbox: SandboxClient
) -> None:
    await sandbox.configure(latency_ms=100)
    await roster.many("AGAIN", 12)
    sweep_run_id = await roster.run(enqueue=False)
    running = await workers.start(SWEEP_MEMBER_CONCURRENCY=4, SWEEP_LANE_CONCURRENCY=2)
    ctx = {RUNTIME: running.worker.runtime}
    tenant_id, run_id = str(roster.tenant.tenant_id), str(sweep_run_id)

    # Four drivers at once on the QUEUED run: one starts it, the roster is written once.
    fired = await asyncio.gather(
        *(sweep_run(ctx, tenant_id, run_id) for _ in range(4)), return_exceptions=True
    )
    assert all(isinstance(outcome, Retry) for outcome in fired), fired
    assert await member_rows(roster, sweep_run_id) == 12
    # Its own job on top, and more looks while it runs.
    assert await roster.enqueue(sweep_run_id)
    assert not await roster.enqueue(sweep_run_id), "a live job's id is taken"
    during = await asyncio.gather(
        *(sweep_run(ctx, tenant_id, run_id) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(o, Retry) or o == "COMPLETED" for o in during), during
    run = await roster.wait(sweep_run_id)
    after = await sweep_run(ctx, tenant_id, run_id)

    assert (run.status, after) == ("COMPLETED", "COMPLETED")
    assert await member_rows(roster, sweep_run_id) == 12
    assert counts(await roster.rows(sweep_run_id)) == {"RECEIVED": 12}
    assert len(await roster.checks(sweep_run_id)) == 12
    requests = await sandbox.requests()
    assert len(requests) == 12
    assert len({r["subscriber_id"] for r in requests}) == 12
    # The unique (sweep_run_id, member_id) the product document names.
    member_id = next(iter(roster.members.values()))
    with pytest.raises(IntegrityError):
        async with tenant_session(roster.tenant) as session:
            await session.execute(
                sa.insert(sweep_run_member).values(
                    sweep_run_id=sweep_run_id,
                    member_id=member_id,
                    service_date=VISIT,
                    status="QUEUED",
                )
            )


async def test_rerunning_a_cancelled_sweep_sends_the_skipped_members(
    roster: Roster, workers: Workers, sandbox: SandboxClient, api_redis: ArqRedis
) -> None:
    await sandbox.configure(latency_ms=400)
    await roster.many("CUT", 8)
    sweep_run_id = await roster.run()
    await workers.start(SWEEP_MEMBER_CONCURRENCY=2)
    await roster.wait_members(
        sweep_run_id, lambda rows: counts(rows).get("SUBMITTED", 0) >= 1, within=15
    )
    cancelled = await post(roster, f"{RUNS}/{sweep_run_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    rows = await roster.wait_members(
        sweep_run_id, lambda rows: "SUBMITTED" not in counts(rows), within=15
    )
    skipped = {m for m, row in rows.items() if row.status == "SKIPPED"}
    assert skipped
    assert {rows[m].failure_reason for m in skipped} == {"Cancelled by operator"}

    try:
        response = await post(roster, f"{RUNS}/{sweep_run_id}/rerun")
        assert response.status_code == 202, response.text
        rerun = response.json()
        assert rerun["scope"] == cancelled.json()["scope"]
        rerun_id = UUID(rerun["sweep_run_id"])
        assert await roster.enqueue(rerun_id)
        again = await roster.wait(rerun_id)
    finally:
        await drop_jobs(api_redis, roster.tenant)

    assert again.status == "COMPLETED"
    assert counts(await roster.rows(rerun_id)) == {"RECEIVED": 8}
    # The skipped members got their first 270 in the re-run; the cancelled run is as it was.
    names = {member_id: name for name, member_id in roster.members.items()}
    for member_id in skipped:
        assert len(await sandbox.requests(names[member_id])) == 1, names[member_id]
    assert (await roster.get_run(sweep_run_id)).status == "CANCELLED"
    assert {m for m, r in (await roster.rows(sweep_run_id)).items() if r.status == "SKIPPED"} == (
        skipped
    )


async def test_pausing_a_schedule_lets_its_run_in_flight_drain(
    roster: Roster, workers: Workers, sandbox: SandboxClient, api_redis: ArqRedis
) -> None:
    await sandbox.configure(latency_ms=300)
    await roster.many("DRAIN", 6)
    created = await post(
        roster,
        f"{BASE}/schedules",
        {"name": "Nightly", "cron": "0 2 * * *", "window_start_days": 0, "window_end_days": 7},
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    schedule_url = f"{BASE}/schedules/{schedule['schedule_id']}"
    try:
        started = await post(roster, f"{schedule_url}/run-now")
        assert started.status_code == 202, started.text
        sweep_run_id = UUID(started.json()["sweep_run_id"])
        assert await roster.enqueue(sweep_run_id)
        await workers.start(SWEEP_MEMBER_CONCURRENCY=2)
        await roster.wait_members(
            sweep_run_id, lambda rows: counts(rows).get("SUBMITTED", 0) >= 1, within=15
        )

        paused = await post(roster, f"{schedule_url}/pause")
        run = await roster.wait(sweep_run_id)
    finally:
        await drop_jobs(api_redis, roster.tenant)

    assert paused.status_code == 200, paused.text
    assert (paused.json()["active"], paused.json()["next_fire_at"]) == (False, None)
    # The configuration is kept.
    changing = {"active", "next_fire_at", "updated_at"}
    assert {k: v for k, v in paused.json().items() if k not in changing} == {
        k: v for k, v in schedule.items() if k not in changing
    }
    assert run.status == "COMPLETED"
    assert run.schedule_id == UUID(schedule["schedule_id"])
    assert counts(await roster.rows(sweep_run_id)) == {"RECEIVED": 6}
    assert len(await sandbox.requests()) == 6
