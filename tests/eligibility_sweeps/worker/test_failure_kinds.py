"""Failure kinds of API.md that the sweep tests did not reach: the payer's daily cap, an
open circuit, and a CAQH CORE partner (its 271s and its error codes), each through a
real worker and the sandbox, ending FAILED with API.md's words; and the exceptions view
of the API over the rows a real sweep wrote."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from tests.conftest import auth, tenant_session
from tests.eligibility_sweeps.factories import add_payer
from tests.eligibility_sweeps.worker.support import VISIT, Roster, Workers, counts
from tests.sandbox_support import SandboxClient

RUNS = "/api/v1/eligibility/sweeps/runs"


async def members_view(roster: Roster, sweep_run_id: UUID, **params: Any) -> list[dict[str, Any]]:
    response = await roster.world.api.get(
        f"{RUNS}/{sweep_run_id}/members",
        params={"limit": 500, **params},
        headers=auth(roster.tenant, "eligibility.read"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_the_payers_daily_cap_fails_the_rest_of_a_sweep_without_sending_them(
    roster: Roster, workers: Workers, sandbox: SandboxClient
) -> None:
    world = roster.world
    await world.patch_partner(
        payer_limits=[{"payer_id": str(world.payer_id), "daily_request_cap": 3}]
    )
    await roster.many("CAP", 7)
    await roster.member("NO-COVER", effective_from=VISIT.replace(year=VISIT.year + 1))
    sweep_run_id = await roster.run()
    # Several members at once: the cap is one atomic count, not a race.
    await workers.start(SWEEP_MEMBER_CONCURRENCY=4, SWEEP_LANE_CONCURRENCY=2)

    run = await roster.wait(sweep_run_id)

    assert run.status == "COMPLETED"
    rows = await roster.rows(sweep_run_id)
    assert counts(rows) == {"RECEIVED": 3, "FAILED": 4, "SKIPPED": 1}
    capped = f"Daily cap of 3 requests reached for payer {world.payer_code}"
    failed = {m: r for m, r in rows.items() if r.status == "FAILED"}
    assert {r.failure_reason for r in failed.values()} == {capped}
    # Not retryable today: one check each, and none of them reached the partner.
    assert all(len(r.check_ids) == 1 for r in failed.values())
    assert len(await sandbox.requests()) == 3
    checks = {c.check_id: c for c in await roster.checks(sweep_run_id)}
    for row in failed.values():
        check = checks[row.check_ids[0]]
        assert (check.status, check.error, check.retryable) == ("FAILED", capped, False)

    # The exception queue, as the SPA reads it, is exactly those rows and the skipped one.
    exceptions = await members_view(roster, sweep_run_id, view="exceptions")
    assert {UUID(m["member_id"]): (m["status"], m["failure_reason"]) for m in exceptions} == {
        **{member_id: ("FAILED", capped) for member_id in failed},
        roster.members["NO-COVER"]: ("SKIPPED", "No active coverage on the service date"),
    }
    everyone = await members_view(roster, sweep_run_id, view="all")
    assert len(everyone) == 8
    assert await members_view(roster, sweep_run_id, view="anomalies") == []


async def test_an_open_circuit_fails_the_remaining_members_without_sending_them(
    roster: Roster, workers: Workers, sandbox: SandboxClient
) -> None:
    for number in range(7):
        await roster.member(f"DOWN-{number}", "SBX-503")
    sweep_run_id = await roster.run()
    # One member at a time and no retries, so the order of events is fixed: five 503s
    # open the circuit, and it stays open (a long cooldown) for the other two.
    await workers.start(
        SWEEP_MEMBER_CONCURRENCY=1, SWEEP_RETRY_ATTEMPTS=0, PARTNER_BREAKER_COOLDOWN_SECONDS=60
    )

    run = await roster.wait(sweep_run_id)

    assert run.status == "COMPLETED"
    rows = await roster.rows(sweep_run_id)
    assert counts(rows) == {"FAILED": 7}
    name = roster.world.partner_name
    reasons = sorted(r.failure_reason for r in rows.values())
    http_503 = [r for r in reasons if r.startswith(f"HTTP 503 from {name}: ")]
    opened = [r for r in reasons if r.startswith(f"Circuit open for {name}: ")]
    assert len(http_503) == 5, reasons
    assert len(opened) == 2, reasons
    # The circuit names the last error that opened it.
    assert {r.removeprefix(f"Circuit open for {name}: ") for r in opened} <= set(http_503)
    assert len(await sandbox.requests()) == 5


async def test_a_sweep_through_a_core_partner_reads_271s_and_core_errors(
    roster: Roster, workers: Workers, sandbox: SandboxClient
) -> None:
    world = roster.world
    async with tenant_session(roster.tenant) as session:
        core_payer = await add_payer(session, f"COR{world.payer_code[-6:]}")
    core = await world.add_partner("core-mime", payer_ids=[str(core_payer)])
    await roster.member("CORE-FINE", payer_ids=[core_payer])
    await roster.member("SBX-INACTIVE", payer_ids=[core_payer])
    await roster.member("SBX-COREERR", payer_ids=[core_payer])
    sweep_run_id = await roster.run()
    await workers.start(SWEEP_RETRY_ATTEMPTS=1)

    run = await roster.wait(sweep_run_id)

    assert run.status == "COMPLETED"
    rows = await roster.by_name(sweep_run_id)
    assert {n: (r.status, r.coverage_status) for n, r in rows.items()} == {
        "CORE-FINE": ("RECEIVED", "ACTIVE"),
        "SBX-INACTIVE": ("RECEIVED", "INACTIVE"),
        "SBX-COREERR": ("FAILED", None),
    }
    assert list(rows["SBX-INACTIVE"].anomalies) == ["COVERAGE_INACTIVE"]
    # The sandbox's CORE error is "Receiver" (the payer did not respond): retryable,
    # so it was tried 1 + 1 times, each try a check of its own, and then failed in words.
    reason = rows["SBX-COREERR"].failure_reason
    assert reason.startswith("CORE error Receiver: "), reason
    assert len(rows["SBX-COREERR"].check_ids) == 2
    assert len(await sandbox.requests("SBX-COREERR")) == 2
    requests = await sandbox.requests()
    assert len(requests) == 4
    assert {r["transport"] for r in requests} == {"core-mime"}
    checks = await roster.checks(sweep_run_id)
    assert {str(c.trading_partner_id) for c in checks} == {core["trading_partner_id"]}
