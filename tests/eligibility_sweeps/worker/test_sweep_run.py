"""A sweep from QUEUED to COMPLETED through a real worker, the sandbox over HTTP and
PostgreSQL: the roster rule, each sandbox outcome on its member row, failures in words,
retries inside the run, a RETRY run, and jobs run again after the end."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from arq.constants import job_key_prefix

from eligibility_sweeps.models import eligibility_sweep_run, sweep_run_member
from eligibility_sweeps.run.service import run_job_id
from eligibility_sweeps.worker.jobs import RUNTIME, sweep_run
from tests.conftest import auth, tenant_session
from tests.eligibility_sweeps.factories import add_payer
from tests.eligibility_sweeps.worker.support import VISIT, Roster, Workers, counts, wait_for
from tests.sandbox_support import SandboxClient

RUNS = "/api/v1/eligibility/sweeps/runs"


async def test_a_sweep_sends_each_member_once_and_completes(
    roster: Roster, workers: Workers, sandbox: SandboxClient
) -> None:
    await roster.member("ACTIVE-ONE")
    await roster.member("ACTIVE-TWO")
    await roster.member("SBX-INACTIVE")
    await roster.member("SBX-NOTFOUND")
    await roster.member("SBX-OTHERPAYER")
    await roster.member("NO-COVER", effective_from=VISIT + timedelta(days=30))
    await roster.member("CANCELLED-VISIT", visits=[(VISIT, "CANCELLED")])
    await roster.member("NO-SHOW", visits=[(VISIT, "NO_SHOW")])
    await roster.member("OUTSIDE", visits=[(VISIT + timedelta(days=30), "SCHEDULED")])
    await roster.member(
        "TWO-VISITS",
        visits=[
            (VISIT + timedelta(days=2), "CHECKED_IN"),
            (VISIT, "SCHEDULED"),
            (VISIT - timedelta(days=1), "NO_SHOW"),
        ],
    )
    sweep_run_id = await roster.run()
    await workers.start()

    run = await roster.wait(sweep_run_id)

    assert run.status == "COMPLETED"
    assert run.started_at is not None
    assert run.roster_at is not None
    assert run.completed_at >= run.roster_at >= run.started_at
    assert run.error is None
    rows = await roster.by_name(sweep_run_id)
    assert set(rows) == {
        "ACTIVE-ONE",
        "ACTIVE-TWO",
        "SBX-INACTIVE",
        "SBX-NOTFOUND",
        "SBX-OTHERPAYER",
        "NO-COVER",
        "TWO-VISITS",
    }
    expected = {
        "ACTIVE-ONE": ("RECEIVED", "ACTIVE", []),
        "ACTIVE-TWO": ("RECEIVED", "ACTIVE", []),
        "TWO-VISITS": ("RECEIVED", "ACTIVE", []),
        "SBX-INACTIVE": ("RECEIVED", "INACTIVE", ["COVERAGE_INACTIVE"]),
        "SBX-NOTFOUND": ("RECEIVED", "NOT_FOUND", ["MEMBER_NOT_FOUND"]),
        "SBX-OTHERPAYER": ("RECEIVED", "ACTIVE", ["OTHER_PAYER_PRIMARY"]),
        "NO-COVER": ("SKIPPED", None, []),
    }
    assert {
        name: (row.status, row.coverage_status, list(row.anomalies)) for name, row in rows.items()
    } == expected
    assert rows["NO-COVER"].failure_reason == "No active coverage on the service date"
    assert rows["NO-COVER"].check_ids == []
    assert rows["TWO-VISITS"].service_date == VISIT
    assert all(row.failure_reason is None for n, row in rows.items() if n != "NO-COVER")

    checks = await roster.checks(sweep_run_id)
    by_member = {c.member_id: c for c in checks}
    assert len(checks) == 6
    for row in rows.values():
        if row.status == "RECEIVED":
            assert row.check_ids == [by_member[row.member_id].check_id]
            assert by_member[row.member_id].status == "RECEIVED"
            assert by_member[row.member_id].service_date == row.service_date
    for name in expected:
        sent = await sandbox.requests(name)
        assert len(sent) == (0 if name == "NO-COVER" else 1), name

    # The API's counts are the rows'.
    response = await roster.world.api.get(
        f"{RUNS}/{sweep_run_id}", headers=auth(roster.tenant, "eligibility.read")
    )
    assert response.json()["counts"] == {
        "total": 7,
        "queued": 0,
        "submitted": 0,
        "received": 6,
        "failed": 0,
        "skipped": 1,
        "anomalies": 3,
    }


async def test_the_payer_filter_and_a_past_window(
    roster: Roster, workers: Workers, sandbox: SandboxClient
) -> None:
    world = roster.world
    async with tenant_session(roster.tenant) as session:
        other_payer = await add_payer(session, f"OTH{world.payer_code[-6:]}")
    await world.patch_partner(payer_ids=[str(world.payer_id), str(other_payer)])
    past = date.today() - timedelta(days=5)
    await roster.member("FILTERED-IN", visits=[(past, "COMPLETED")])
    await roster.member(
        "BOTH-PAYERS", visits=[(past, "CHECKED_IN")], payer_ids=[world.payer_id, other_payer]
    )
    await roster.member("OTHER-PAYER-ONLY", visits=[(past, "COMPLETED")], payer_ids=[other_payer])
    await roster.member("NO-SHOW", visits=[(past, "NO_SHOW")])
    await roster.member(
        "EXPIRED", visits=[(past, "COMPLETED")], effective_to=past - timedelta(days=1)
    )
    sweep_run_id = await roster.run(
        date_from=date.today() - timedelta(days=14),
        date_to=date.today(),
        payer_ids=[world.payer_id],
    )
    await workers.start()

    run = await roster.wait(sweep_run_id)

    assert run.status == "COMPLETED"
    rows = await roster.by_name(sweep_run_id)
    assert {name: row.status for name, row in rows.items()} == {
        "FILTERED-IN": "RECEIVED",
        "BOTH-PAYERS": "RECEIVED",
        "EXPIRED": "SKIPPED",
    }
    assert rows["EXPIRED"].failure_reason == "No active coverage on the service date"
    # A member with both payers gets a 270 for the filtered payer only.
    checks = await roster.checks(sweep_run_id)
    assert {c.payer_id for c in checks} == {world.payer_id}
    assert len(await sandbox.requests("BOTH-PAYERS")) == 1


async def test_every_coverage_gets_its_270(
    roster: Roster, workers: Workers, sandbox: SandboxClient
) -> None:
    world = roster.world
    async with tenant_session(roster.tenant) as session:
        second = await add_payer(session, f"SEC{world.payer_code[-6:]}")
    await world.patch_partner(payer_ids=[str(world.payer_id), str(second)])
    member_id = await roster.member("TWO-COVERAGES", payer_ids=[world.payer_id, second])
    sweep_run_id = await roster.run()
    await workers.start()

    await roster.wait(sweep_run_id)

    row = (await roster.rows(sweep_run_id))[member_id]
    assert row.status == "RECEIVED"
    checks = await roster.checks(sweep_run_id)
    assert {c.payer_id for c in checks} == {world.payer_id, second}
    assert sorted(row.check_ids) == sorted(c.check_id for c in checks)
    assert len(await sandbox.requests("TWO-COVERAGES")) == 2


async def test_each_failure_kind_fails_its_member_in_words(
    roster: Roster, workers: Workers, sandbox: SandboxClient
) -> None:
    world = roster.world
    async with tenant_session(roster.tenant) as session:
        slow_payer = await add_payer(session, f"SLW{world.payer_code[-6:]}")
        down_payer = await add_payer(session, f"DWN{world.payer_code[-6:]}")
        lost_payer = await add_payer(session, f"LST{world.payer_code[-6:]}")
    # One partner per kind of failure the circuit breaker counts, so that one member's
    # timeouts never open the circuit for another's 503s.
    answering = dict(world.partner)
    await world.add_partner(timeout_seconds=1, payer_ids=[str(slow_payer)])
    down = await world.add_partner(payer_ids=[str(down_payer)])
    for name in ("SBX-AAA79", "SBX-999", "SBX-TA1", "SBX-401", "SBX-AAA42"):
        await roster.member(name)
    await roster.member("SBX-503", payer_ids=[down_payer])
    await roster.member("SBX-HANG", payer_ids=[slow_payer])
    await roster.member("NOT-ROUTED", payer_ids=[lost_payer])
    sweep_run_id = await roster.run()
    await workers.start(SWEEP_RETRY_ATTEMPTS=2)

    run = await roster.wait(sweep_run_id, within=40)

    assert run.status == "COMPLETED"
    rows = await roster.by_name(sweep_run_id)
    assert {row.status for row in rows.values()} == {"FAILED"}
    reasons = {name: row.failure_reason for name, row in rows.items()}
    assert reasons["SBX-AAA79"].startswith("AAA 79: ")
    assert reasons["SBX-AAA42"].startswith("AAA 42: ")
    assert reasons["SBX-999"].startswith("999 rejected: ")
    assert reasons["SBX-TA1"].startswith("TA1 rejected: 006 ")
    assert reasons["SBX-401"].startswith(f"HTTP 401 from {answering['name']}: Unauthorized")
    assert reasons["SBX-503"].startswith(f"HTTP 503 from {down['name']}: Service temporarily")
    assert reasons["SBX-HANG"] == "Timeout after 1 s"
    lost_code = f"LST{world.payer_code[-6:]}"
    assert reasons["NOT-ROUTED"] == f"No active trading partner for payer {lost_code}"
    # Retryable failures were tried 1 + 2 times, the others once; each try is a check.
    for name, tries in {
        "SBX-AAA42": 3,
        "SBX-503": 3,
        "SBX-HANG": 3,
        "SBX-AAA79": 1,
        "SBX-999": 1,
        "SBX-TA1": 1,
        "SBX-401": 1,
    }.items():
        assert len(await sandbox.requests(name)) == tries, name
        assert len(rows[name].check_ids) == tries, name
    assert len(rows["NOT-ROUTED"].check_ids) == 1
    checks = {c.check_id: c for c in await roster.checks(sweep_run_id)}
    retried = [checks[c] for c in rows["SBX-503"].check_ids]
    assert [c.status for c in retried] == ["FAILED"] * 3
    assert len({c.trace_number for c in retried}) == 3
    assert len({c.control_number for c in retried}) == 3


async def test_a_retryable_failure_is_retried_until_it_succeeds(
    roster: Roster, workers: Workers, sandbox: SandboxClient
) -> None:
    await sandbox.configure(error_rate=0.3)
    await roster.many("FLAKY", 12)
    sweep_run_id = await roster.run()
    await workers.start(SWEEP_RETRY_ATTEMPTS=8)

    run = await roster.wait(sweep_run_id)

    assert run.status == "COMPLETED"
    rows = await roster.rows(sweep_run_id)
    assert counts(rows) == {"RECEIVED": 12}
    requests = await sandbox.requests()
    assert len(requests) > 12  # some 503s, each retried
    assert sum(len(r.check_ids) for r in rows.values()) == len(requests)
    checks = {c.check_id: c for c in await roster.checks(sweep_run_id)}
    for row in rows.values():
        tries = [checks[c] for c in row.check_ids]
        assert [c.status for c in tries] == ["FAILED"] * (len(tries) - 1) + ["RECEIVED"]
        assert all(c.retryable for c in tries[:-1])


async def test_retry_failed_sends_only_the_failed_members_again(
    roster: Roster, workers: Workers, sandbox: SandboxClient
) -> None:
    await roster.member("SBX-AAA79")
    await roster.member("FINE")
    sweep_run_id = await roster.run()
    await workers.start()
    await roster.wait(sweep_run_id)

    response = await roster.world.api.post(
        f"{RUNS}/{sweep_run_id}/retry-failed", headers=auth(roster.tenant, "eligibility.update")
    )
    assert response.status_code == 202, response.text
    retry_id = UUID(response.json()["sweep_run_id"])
    assert await roster.enqueue(retry_id)
    retry = await roster.wait(retry_id)

    assert retry.status == "COMPLETED"
    assert retry.trigger == "RETRY"
    rows = await roster.by_name(retry_id)
    assert {name: row.status for name, row in rows.items()} == {"SBX-AAA79": "FAILED"}
    assert len(await sandbox.requests("SBX-AAA79")) == 2
    assert len(await sandbox.requests("FINE")) == 1


async def test_a_finished_runs_job_changes_nothing(
    roster: Roster, workers: Workers, sandbox: SandboxClient
) -> None:
    await roster.member("DONE")
    sweep_run_id = await roster.run()
    running = await workers.start()
    await roster.wait(sweep_run_id)
    # The run's job ends at its next look, and keep_result=0 frees its id at once.
    await _queue_drained(roster)
    job_id = run_job_id(roster.tenant.tenant_id, sweep_run_id)
    assert await roster.arq.exists(job_key_prefix + job_id) == 0
    before = await snapshot(roster, sweep_run_id)

    assert await roster.enqueue(sweep_run_id)
    ctx = {RUNTIME: running.worker.runtime}
    outcome = await sweep_run(ctx, str(roster.tenant.tenant_id), str(sweep_run_id))
    await roster.wait(sweep_run_id)
    await _queue_drained(roster)

    assert outcome == "COMPLETED"
    assert await snapshot(roster, sweep_run_id) == before
    assert len(await sandbox.requests("DONE")) == 1


async def _queue_drained(roster: Roster) -> None:
    await wait_for(
        lambda: roster.arq.zcard(roster.arq.default_queue_name), lambda n: n == 0, within=10
    )


async def snapshot(roster: Roster, sweep_run_id: UUID) -> Any:
    async with tenant_session(roster.tenant) as session:
        run = (
            await session.execute(
                sa.select(eligibility_sweep_run).where(
                    eligibility_sweep_run.c.sweep_run_id == sweep_run_id
                )
            )
        ).one()
        members = (
            await session.execute(
                sa.select(sweep_run_member).where(sweep_run_member.c.sweep_run_id == sweep_run_id)
            )
        ).all()
    return run, sorted(members)


async def test_late_271s_settle_their_members_and_complete_the_run(
    roster: Roster, workers: Workers, sandbox: SandboxClient, checks_server: Any
) -> None:
    world = roster.world
    await sandbox.configure(
        delivery="delayed",
        delay_seconds=1.0,
        inbound_url=f"{checks_server.url}/api/v1/eligibility/inbound/{world.partner_id}",
        inbound_credential=world.partner["inbound_credential"],
    )
    await roster.member("LATE-ONE")
    await roster.member("SBX-INACTIVE")
    sweep_run_id = await roster.run()
    await workers.start()

    # Sent and accepted for later: SUBMITTED, the run RUNNING and its slot given back.
    rows = await roster.wait_members(
        sweep_run_id,
        lambda rows: len(rows) == 2 and all(r.check_ids for r in rows.values()),
        within=10,
    )
    assert {row.status for row in rows.values()} == {"SUBMITTED"}
    assert (await roster.get_run(sweep_run_id)).status == "RUNNING"

    run = await roster.wait(sweep_run_id, within=20)

    assert run.status == "COMPLETED"
    rows = await roster.by_name(sweep_run_id)
    assert rows["LATE-ONE"].status == "RECEIVED"
    assert rows["SBX-INACTIVE"].status == "RECEIVED"
    assert list(rows["SBX-INACTIVE"].anomalies) == ["COVERAGE_INACTIVE"]
    assert rows["SBX-INACTIVE"].coverage_status == "INACTIVE"
