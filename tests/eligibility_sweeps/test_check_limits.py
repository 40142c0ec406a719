"""The limits a check passes before its 270 leaves, through ``POST /eligibility/checks``
against the real sandbox: the payer's daily cap, the partner's circuit breaker, and the
partner's and the payer's request rates held by two separate API processes together,
measured where they matter: at the partner, from the sandbox's ``received_at``."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import httpx
import pytest
from redis.asyncio import Redis

from eligibility_sweeps.transport import Admission, CheckRefused, Limits, PartnerEndpoint
from rcm_kit.clock import FixedClock
from tests.conftest import TenantFactory, auth, free_port, service_env, tenant_session
from tests.eligibility_sweeps.checks_support import *  # noqa: F403 (fixtures)
from tests.eligibility_sweeps.checks_support import (
    BREAKER_COOLDOWN,
    CHECKS,
    CONFIG,
    PARTNERS,
    READ,
    SECRETS_KEY,
    WRITE,
    World,
    make_world,
)
from tests.eligibility_sweeps.factories import add_member, add_policy
from tests.eligibility_sweeps.rates import ARRIVAL_JITTER_SECONDS, violations
from tests.processes import spawn, until_ready
from tests.sandbox_support import SandboxClient

# rcm_kit.settings.CommonSettings.TENANT_POOL_SIZE: connections per tenant and process.
TENANT_POOL_SIZE = 5


async def new_members(world: World, subscriber_ids: Sequence[str]) -> list[UUID]:
    """One member per subscriber id, each with a policy of the world's payer."""
    made = []
    async with tenant_session(world.tenant) as session:
        for subscriber_id in subscriber_ids:
            member_id = await add_member(session, f"{subscriber_id}-{uuid4().hex[:8]}")
            await add_policy(session, member_id, world.payer_id, subscriber_id=subscriber_id)
            made.append(member_id)
    return made


async def check(world: World, member_id: UUID, client: httpx.AsyncClient | None = None) -> Any:
    """``POST /checks`` for ``member_id`` (through ``client``, else the world's API)."""
    response = await (client or world.api).post(
        CHECKS,
        json={
            "member_id": str(member_id),
            "service_date": (date.today() + timedelta(days=3)).isoformat(),
        },
        headers=auth(world.tenant, WRITE),
    )
    assert response.status_code == 201, response.text
    return response.json()


def limits_of(world: World, redis: Redis, **kwargs: Any) -> Limits:
    """The tenant's limits as the API keeps them (its Redis prefix), for a direct look."""
    return Limits(redis, prefix=f"rcm:{world.tenant.tenant_id}", **kwargs)


def endpoint_of(world: World) -> PartnerEndpoint:
    return PartnerEndpoint.from_row(
        {
            "trading_partner_id": UUID(world.partner_id),
            "name": world.partner_name,
            "transport": world.partner["transport"],
            "endpoint_url": world.partner["endpoint_url"],
            "auth_type": "none",
            "auth_username": None,
            "auth_secret_encrypted": None,
            "sender_id": world.partner["sender_id"],
            "receiver_id": world.partner["receiver_id"],
            "timeout_seconds": world.partner["timeout_seconds"],
        },
        box=None,
    )


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


# Daily cap


async def test_the_daily_cap_fails_the_third_check_without_sending_it(
    make_tenant: TenantFactory, api: httpx.AsyncClient, sandbox: SandboxClient
) -> None:
    world = await make_world(make_tenant, api, sandbox)
    await world.add_partner(
        payer_limits=[{"payer_id": str(world.payer_id), "daily_request_cap": 2}]
    )
    first, second, third = await new_members(world, ["SBX-ACTIVE"] * 3)

    sent = [await check(world, first), await check(world, second)]
    capped = await check(world, third)

    assert [c["status"] for c in sent] == ["RECEIVED", "RECEIVED"]
    assert capped["status"] == "FAILED"
    assert capped["error"] == f"Daily cap of 2 requests reached for payer {world.payer_code}"
    assert capped["retryable"] is False
    assert capped["trading_partner_id"] == world.partner_id
    assert capped["submitted_at"] is None
    received = await sandbox.requests()
    assert sorted(r["trace_number"] for r in received) == sorted(c["trace_number"] for c in sent)


async def test_the_daily_cap_the_api_spent_binds_only_its_utc_day(
    make_tenant: TenantFactory, api: httpx.AsyncClient, sandbox: SandboxClient, redis: Redis
) -> None:
    # The API's clock cannot be injected (eligibility_sweeps.app.create_app takes no
    # clock), so the day rollover is shown on the counters the API itself filled: the
    # tenant's Limits under an injected clock read and write the same Redis keys.
    world = await make_world(make_tenant, api, sandbox)
    await world.add_partner(
        payer_limits=[{"payer_id": str(world.payer_id), "daily_request_cap": 2}]
    )
    members = await new_members(world, ["SBX-ACTIVE"] * 3)
    for member_id in members[:2]:
        assert (await check(world, member_id))["status"] == "RECEIVED"
    today = datetime.now(UTC).date()
    clock = FixedClock(datetime.combine(today, time.max, tzinfo=UTC))
    limits = limits_of(world, redis, clock=clock.now)
    partner = endpoint_of(world)

    async def admit() -> Admission:
        return await limits.admit(
            partner=partner,
            partner_rps=None,
            payer_id=world.payer_id,
            payer_label=f"payer {world.payer_code}",
            payer_rps=None,
            daily_cap=2,
        )

    with pytest.raises(CheckRefused) as last_moment:
        await admit()
    # The first instant of the next UTC day, given as New York's evening of today: the
    # cap counts UTC days, not the caller's local ones.
    clock.instant = datetime.combine(today + timedelta(days=1), time.min, tzinfo=UTC).astimezone(
        ZoneInfo("America/New_York")
    )
    assert clock.instant.date() == today
    tomorrow = [await admit(), await admit()]
    with pytest.raises(CheckRefused):
        await admit()

    assert (
        last_moment.value.reason == f"Daily cap of 2 requests reached for payer {world.payer_code}"
    )
    assert [a.daily_count for a in tomorrow] == [1, 2]
    # Tomorrow's count leaves today's as the API spent it.
    still_today = await check(world, members[2])
    assert still_today["error"] == last_moment.value.reason
    assert len(await sandbox.requests()) == 2


# Circuit breaker


def http_503(world: World) -> str:
    return f"HTTP 503 from {world.partner_name}: Service temporarily unavailable"


async def open_the_circuit(world: World) -> list[Any]:
    """Five checks the sandbox answers 503: the fifth opens the breaker."""
    failed = [await check(world, m) for m in await new_members(world, ["SBX-503"] * 5)]
    for one in failed:
        assert one["status"] == "FAILED", one
        assert one["error"].startswith(http_503(world)), one
        assert one["retryable"] is True
        assert one["submitted_at"] is not None
    return failed


async def test_five_503s_open_the_circuit_and_a_probe_after_the_cooldown_closes_it(
    world: World, redis: Redis
) -> None:
    active = await new_members(world, ["SBX-ACTIVE"] * 3)
    failed = await open_the_circuit(world)

    refused = await check(world, active[0])

    assert refused["status"] == "FAILED"
    assert refused["error"] == f"Circuit open for {world.partner_name}: {failed[-1]['error']}"
    assert refused["retryable"] is True
    assert refused["submitted_at"] is None
    assert [r["subscriber_id"] for r in await world.sandbox.requests()] == ["SBX-503"] * 5

    await asyncio.sleep(BREAKER_COOLDOWN + 0.1)
    probe = await check(world, active[1])
    state = await limits_of(world, redis).breaker_state(UUID(world.partner_id))
    after = await check(world, active[2])

    assert probe["status"] == "RECEIVED", probe
    assert (state.state, state.failures, state.probe_in_flight) == ("closed", 0, False)
    assert after["status"] == "RECEIVED", after
    received = [r["trace_number"] for r in await world.sandbox.requests()]
    assert received == [c["trace_number"] for c in (*failed, probe, after)]


async def test_a_probe_that_fails_reopens_the_circuit(world: World) -> None:
    down, up, later = await new_members(world, ["SBX-503", "SBX-ACTIVE", "SBX-ACTIVE"])
    await open_the_circuit(world)
    await asyncio.sleep(BREAKER_COOLDOWN + 0.1)

    probe = await check(world, down)
    refused = await check(world, up)

    assert probe["status"] == "FAILED"
    assert probe["error"].startswith(http_503(world))
    assert probe["submitted_at"] is not None
    assert refused["error"] == f"Circuit open for {world.partner_name}: {probe['error']}"
    assert refused["retryable"] is True
    assert [r["subscriber_id"] for r in await world.sandbox.requests()] == ["SBX-503"] * 6

    await asyncio.sleep(BREAKER_COOLDOWN + 0.1)
    assert (await check(world, later))["status"] == "RECEIVED"


async def test_401s_never_open_the_circuit(world: World, redis: Redis) -> None:
    members = await new_members(world, ["SBX-401"] * 6 + ["SBX-ACTIVE"])

    rejected = [await check(world, m) for m in members[:6]]
    state = await limits_of(world, redis).breaker_state(UUID(world.partner_id))
    active = await check(world, members[6])

    for one in rejected:
        assert one["status"] == "FAILED"
        assert one["error"].startswith(f"HTTP 401 from {world.partner_name}: Unauthorized")
        assert one["retryable"] is False
    assert (state.state, state.failures) == ("closed", 0)
    assert active["status"] == "RECEIVED", active
    assert len(await world.sandbox.requests()) == 7


async def test_an_answer_between_failures_starts_the_count_again(world: World) -> None:
    members = await new_members(world, ["SBX-503"] * 4 + ["SBX-401"] + ["SBX-503"] * 4)
    outcomes = [await check(world, m) for m in members]
    active = await check(world, (await new_members(world, ["SBX-ACTIVE"]))[0])

    assert [o["error"][:8] for o in outcomes] == ["HTTP 503"] * 4 + ["HTTP 401"] + ["HTTP 503"] * 4
    assert active["status"] == "RECEIVED", active


async def test_connection_failures_open_the_circuit_too(world: World) -> None:
    dead = f"http://127.0.0.1:{free_port()}/x12"
    await world.patch_partner(endpoint_url=dead)
    members = await new_members(world, ["SBX-ACTIVE"] * 7)

    failed = [await check(world, m) for m in members[:5]]
    refused = await check(world, members[5])

    for one in failed:
        assert one["error"].startswith(f"Connection failed to {world.partner_name}: "), one
        assert one["retryable"] is True
    assert refused["error"] == f"Circuit open for {world.partner_name}: {failed[-1]['error']}"

    await world.patch_partner(endpoint_url=f"{world.sandbox.base_url}/x12")
    await asyncio.sleep(BREAKER_COOLDOWN + 0.1)
    assert (await check(world, members[6]))["status"] == "RECEIVED"
    assert len(await world.sandbox.requests()) == 1


# Rates held by two processes


def _start_api(master_url: str, redis_url: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    settings = service_env(
        master_url,
        redis_url,
        SECRETS_KEY=SECRETS_KEY,
        SWEEPS_API_PORT=port,
        PARTNER_BREAKER_COOLDOWN_SECONDS=BREAKER_COOLDOWN,
        # Longer than the slowest batch below takes, so no check gives up waiting.
        PARTNER_RATE_WAIT_SECONDS=30,
    )
    return spawn("sweeps-api", log, settings), f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
async def two_apis(
    master_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[list[str]]:
    """Two ``sweeps-api`` processes on the test session's databases and Redis."""
    logs = [tmp_path_factory.mktemp("sweeps-api") / f"api-{n}.log" for n in range(2)]
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for log in logs:
            process, url = _start_api(master_url, redis_url, log)
            processes.append(process)
            urls.append(url)
        for process, url, log in zip(processes, urls, logs, strict=True):
            await until_ready(process, url, "/readyz", log)
        yield urls
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)


async def warm_up(world: World, client: httpx.AsyncClient) -> None:
    """Bring the process to where a running service is before the clock starts: its
    tenant connection pool open, the partner's control-number row in place and a
    keep-alive connection to the partner.

    Between its token and its send a check runs one more transaction (the control
    numbers). In a process meeting the tenant for the first time that transaction waits
    for new database connections and creates the counter row, delaying the first sends
    by a varying 0.1-0.4 s, which bunches them at the partner. The connectivity probe
    does all of this without spending a token (it bypasses the limits).
    """
    reads = [
        client.get(CHECKS, params={"limit": 1}, headers=auth(world.tenant, READ))
        for _ in range(TENANT_POOL_SIZE)
    ]
    for response in await asyncio.gather(*reads):
        assert response.status_code == 200, response.text
    probe = await client.post(
        f"{PARTNERS}/{world.partner_id}/test", headers=auth(world.tenant, CONFIG)
    )
    assert probe.json()["ok"] is True, probe.text


async def burst_through(world: World, urls: Sequence[str], count: int) -> list[float]:
    """``count`` concurrent checks spread over the processes at ``urls``; every one
    RECEIVED. The instants the sandbox received them, in seconds."""
    members = await new_members(world, [f"RATE-{n}" for n in range(count)])
    clients = [httpx.AsyncClient(base_url=url, timeout=60) for url in urls]
    try:
        await asyncio.gather(*(warm_up(world, client) for client in clients))
        await world.sandbox.clear()
        outcomes = await asyncio.gather(
            *(check(world, m, clients[n % len(clients)]) for n, m in enumerate(members))
        )
    finally:
        for client in clients:
            await client.aclose()
    assert [o["status"] for o in outcomes] == ["RECEIVED"] * count, outcomes
    received = await world.sandbox.requests()
    assert sorted(r["trace_number"] for r in received) == sorted(
        o["trace_number"] for o in outcomes
    )
    return [datetime.fromisoformat(r["received_at"]).timestamp() for r in received]


async def test_two_processes_together_keep_the_partner_rate(
    make_tenant: TenantFactory,
    api: httpx.AsyncClient,
    sandbox: SandboxClient,
    two_apis: list[str],
) -> None:
    world = await make_world(make_tenant, api, sandbox)
    await world.add_partner(max_requests_per_second=4)

    instants = await burst_through(world, two_apis, 24)

    # One every 0.25 s: never more than 1 + 4w in a window of w seconds, and 24 take
    # at least 23 / 4 = 5.75 s. Each process alone would let 4 per second through, so
    # together they would finish in half that. And the limiter holds back little more.
    offsets = [round(t - min(instants), 3) for t in sorted(instants)]
    assert violations(instants, 4, ARRIVAL_JITTER_SECONDS) == [], offsets
    assert max(instants) - min(instants) >= 5.75 - ARRIVAL_JITTER_SECONDS, offsets
    assert max(instants) - min(instants) < 5.75 + 2.5, offsets


async def test_two_processes_together_keep_a_stricter_payer_rate(
    make_tenant: TenantFactory,
    api: httpx.AsyncClient,
    sandbox: SandboxClient,
    two_apis: list[str],
) -> None:
    world = await make_world(make_tenant, api, sandbox)
    await world.add_partner(
        max_requests_per_second=10,
        payer_limits=[{"payer_id": str(world.payer_id), "max_requests_per_second": 2}],
    )

    instants = await burst_through(world, two_apis, 10)

    # The payer's 2 per second binds, not the partner's 10: one every 0.5 s, and 10
    # take at least 9 / 2 = 4.5 s.
    offsets = [round(t - min(instants), 3) for t in sorted(instants)]
    assert violations(instants, 2, ARRIVAL_JITTER_SECONDS) == [], offsets
    assert max(instants) - min(instants) >= 4.5 - ARRIVAL_JITTER_SECONDS, offsets
    assert max(instants) - min(instants) < 4.5 + 2.5, offsets
