"""A payer's published rate limit held during a SWEEP, measured where it matters: at the
partner, from the sandbox's ``received_at`` of each 270.

The checks-era tests (``test_check_limits.py``) measure the rate of ``POST /checks``
through two API processes; this one drives the same limits through the sweep worker's
lanes: two workers share one sweep with several members in flight, and the payer's
bucket in Redis must still space the 270s for the payer as a whole."""

from __future__ import annotations

from datetime import datetime

from tests.eligibility_sweeps.rates import ARRIVAL_JITTER_SECONDS, busiest_second, violations
from tests.eligibility_sweeps.worker.support import Roster, Workers, counts
from tests.sandbox_support import SandboxClient

# The payer's limit; the partner's own is looser, so the payer's is the one that binds.
PAYER_RPS = 5
PARTNER_RPS = 50
MEMBERS = 20


async def test_a_sweep_keeps_the_payers_rate_at_the_partner_across_two_workers(
    roster: Roster, workers: Workers, sandbox: SandboxClient
) -> None:
    world = roster.world
    await world.patch_partner(
        max_requests_per_second=PARTNER_RPS,
        payer_limits=[{"payer_id": str(world.payer_id), "max_requests_per_second": PAYER_RPS}],
    )
    await roster.many("RATE", MEMBERS)
    sweep_run_id = await roster.run(enqueue=False)
    # Three lanes of three and at most two jobs per worker: neither worker can hold every
    # lane, so both send, each through its own Redis client, and 9 members are in flight
    # at once (far more than the payer's 5 per second would need).
    options = {
        "SWEEP_MEMBER_CONCURRENCY": 9,
        "SWEEP_LANE_CONCURRENCY": 3,
        "SWEEPS_WORKER_MAX_JOBS": 2,
        "SWEEP_SEND_JOB_SECONDS": 0.5,
    }
    first = await workers.start(**options)
    second = await workers.start(**options)
    assert await roster.enqueue(sweep_run_id)

    run = await roster.wait(sweep_run_id, within=30)

    assert run.status == "COMPLETED"
    assert counts(await roster.rows(sweep_run_id)) == {"RECEIVED": MEMBERS}
    assert first.claimed > 0
    assert second.claimed > 0
    assert first.claimed + second.claimed == MEMBERS
    requests = await sandbox.requests()
    assert len(requests) == MEMBERS
    assert len({r["subscriber_id"] for r in requests}) == MEMBERS
    checks = await roster.checks(sweep_run_id)
    assert {c.status for c in checks} == {"RECEIVED"}
    assert len(checks) == MEMBERS, "a rate wait must not fail and retry a member"

    instants = [datetime.fromisoformat(r["received_at"]).timestamp() for r in requests]
    offsets = [round(t - min(instants), 3) for t in sorted(instants)]
    # Never faster than the bucket allows, over any window...
    assert violations(instants, PAYER_RPS, ARRIVAL_JITTER_SECONDS) == [], offsets
    assert busiest_second(instants) <= PAYER_RPS + 1, offsets
    # ...so 20 take at least 19 / 5 = 3.8 s, and the limiter holds back little more.
    expected = (MEMBERS - 1) / PAYER_RPS
    assert max(instants) - min(instants) >= expected - ARRIVAL_JITTER_SECONDS, offsets
    assert max(instants) - min(instants) < expected + 3, offsets
