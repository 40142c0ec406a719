"""A sweep cancelled while it runs, and a worker killed in the middle of one: queued
members are skipped, members in flight still get their 271, and no member ever gets a
second 270."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta
from pathlib import Path

import httpx

from tests.conftest import auth, free_port
from tests.eligibility_sweeps.worker.support import (
    OffsetClock,
    Roster,
    Workers,
    counts,
    forget_in_progress,
    wait_for,
)
from tests.sandbox_support import SandboxClient

RUNS = "/api/v1/eligibility/sweeps/runs"
CLAIM_TIMEOUT_SECONDS = 120


async def test_cancel_skips_queued_members_and_lets_those_in_flight_finish(
    roster: Roster, workers: Workers, sandbox: SandboxClient
) -> None:
    await sandbox.configure(latency_ms=800)
    await roster.many("SLOW", 20)
    sweep_run_id = await roster.run()
    await workers.start(SWEEP_MEMBER_CONCURRENCY=4, SWEEP_LANE_CONCURRENCY=2)
    await roster.wait_members(
        sweep_run_id, lambda rows: counts(rows).get("SUBMITTED", 0) >= 2, within=15
    )

    response = await roster.world.api.post(
        f"{RUNS}/{sweep_run_id}/cancel", headers=auth(roster.tenant, "eligibility.update")
    )

    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["completed_at"] is not None
    in_flight = cancelled["counts"]["submitted"]
    assert in_flight >= 2
    assert cancelled["counts"]["queued"] == 0
    # The 270s already sent resolve as RECEIVED; nothing else is sent.
    rows = await roster.wait_members(
        sweep_run_id, lambda rows: "SUBMITTED" not in counts(rows), within=15
    )
    received = [row for row in rows.values() if row.status == "RECEIVED"]
    skipped = [row for row in rows.values() if row.status == "SKIPPED"]
    assert len(received) + len(skipped) == 20
    assert len(received) >= in_flight
    assert {row.failure_reason for row in skipped} == {"Cancelled by operator"}
    await asyncio.sleep(1.0)
    assert len(await sandbox.requests()) == len(received)
    run = await roster.get_run(sweep_run_id)
    assert run.status == "CANCELLED"
    assert run.completed_at.isoformat().startswith(cancelled["completed_at"][:19])


async def test_a_killed_worker_never_sends_a_member_twice(
    roster: Roster, workers: Workers, sandbox: SandboxClient, tmp_path: Path
) -> None:
    await sandbox.configure(latency_ms=300)
    await roster.many("CRASH", 40)
    sweep_run_id = await roster.run()
    port = free_port()
    process = workers.spawn(
        tmp_path / "worker.log",
        SWEEP_MEMBER_CONCURRENCY=8,
        SWEEP_LANE_CONCURRENCY=4,
        SWEEP_CLAIM_TIMEOUT_SECONDS=CLAIM_TIMEOUT_SECONDS,
        SWEEPS_WORKER_HEALTH_PORT=port,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as health:
            await wait_for(lambda: _get(health, "/healthz"), lambda r: r == 200, within=20)
            rows = await roster.wait_members(
                sweep_run_id,
                lambda rows: (
                    counts(rows).get("RECEIVED", 0) >= 8 and counts(rows).get("SUBMITTED", 0) >= 4
                ),
                within=20,
            )
            metrics = (await health.get("/metrics")).text
            assert "sweeps_running 1.0" in metrics
            assert "sweep_members_total" in metrics
            assert "eligibility_270_round_trip_seconds" in metrics
    finally:
        process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait, 10)
    assert counts(rows).get("QUEUED", 0) > 0

    # arq lets the dead worker's jobs run again once their in-progress keys expire (the
    # job timeout + 10 s); a worker that lives past the claim timeout resumes the run.
    assert await forget_in_progress(roster.arq, roster.tenant.tenant_id) >= 1
    await workers.start(
        clock=OffsetClock(timedelta(seconds=CLAIM_TIMEOUT_SECONDS + 10)),
        SWEEP_CLAIM_TIMEOUT_SECONDS=CLAIM_TIMEOUT_SECONDS,
    )
    run = await roster.wait(sweep_run_id, within=30)

    assert run.status == "COMPLETED"
    rows = await roster.rows(sweep_run_id)
    assert set(counts(rows)) <= {"RECEIVED", "FAILED"}
    checks = {c.check_id: c for c in await roster.checks(sweep_run_id)}
    requests = await sandbox.requests()
    sent: dict[str, int] = {}
    for request in requests:
        sent[request["subscriber_id"]] = sent.get(request["subscriber_id"], 0) + 1
    assert max(sent.values()) == 1
    traces = [request["trace_number"] for request in requests]
    assert len(traces) == len(set(traces))
    assert set(traces) <= {c.trace_number for c in checks.values()}
    for row in rows.values():
        assert len(row.check_ids) == 1
        check = checks[row.check_ids[0]]
        if row.status == "FAILED":
            assert row.failure_reason == (
                f"Outcome unknown: 270 {check.trace_number} was interrupted"
            )
            assert check.status == "SUBMITTED"
        else:
            assert check.status == "RECEIVED"
    assert counts(rows).get("FAILED", 0) >= 1


async def _get(client: httpx.AsyncClient, path: str) -> int:
    try:
        return (await client.get(path)).status_code
    except httpx.TransportError:
        return 0


async def test_sigterm_lets_members_in_flight_finish_and_another_worker_carries_on(
    roster: Roster, workers: Workers, sandbox: SandboxClient, tmp_path: Path
) -> None:
    await sandbox.configure(latency_ms=400)
    await roster.many("TERM", 30)
    sweep_run_id = await roster.run()
    process = workers.spawn(
        tmp_path / "worker.log",
        SWEEP_MEMBER_CONCURRENCY=6,
        SWEEP_LANE_CONCURRENCY=3,
        SWEEPS_WORKER_HEALTH_PORT=free_port(),
    )
    try:
        await roster.wait_members(
            sweep_run_id, lambda rows: counts(rows).get("SUBMITTED", 0) >= 3, within=20
        )
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, 15)
    finally:
        if process.poll() is None:
            process.kill()
            await asyncio.to_thread(process.wait, 10)

    assert code == 0
    rows = await roster.rows(sweep_run_id)
    # Every member it claimed was answered and settled before it exited.
    assert "SUBMITTED" not in counts(rows)
    assert counts(rows).get("QUEUED", 0) > 0
    assert "worker.stopped" in (tmp_path / "worker.log").read_text()

    await workers.start()
    run = await roster.wait(sweep_run_id)

    assert run.status == "COMPLETED"
    assert counts(await roster.rows(sweep_run_id)) == {"RECEIVED": 30}
    requests = await sandbox.requests()
    assert len(requests) == 30
    assert len({r["subscriber_id"] for r in requests}) == 30
