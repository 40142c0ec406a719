"""``POST /admin/trading-partners/{id}/test``: a real probe 270 to the clearinghouse
sandbox, what it answers in words, and what the probe must never do (spend the daily
cap, take rate tokens, open the breaker, show the password)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from redis.asyncio import Redis

from eligibility_sweeps.transport import Limits
from tests.conftest import TenantFactory, auth, free_port
from tests.eligibility_sweeps.checks_support import *  # noqa: F403 (fixtures)
from tests.eligibility_sweeps.checks_support import (
    CONFIG,
    PARTNERS,
    PASSWORD,
    WRITE,
    World,
    make_world,
)
from tests.eligibility_sweeps.test_members_api import audit_rows
from tests.sandbox_support import SandboxClient

PROBE_SUBSCRIBER = "CONNECTIVITYTEST"


async def probe(
    world: World, *, partner_id: str | None = None, perms: str = CONFIG
) -> httpx.Response:
    """``POST .../test``; whatever it answers never carries the partner's password."""
    response = await world.api.post(
        f"{PARTNERS}/{partner_id or world.partner_id}/test", headers=auth(world.tenant, perms)
    )
    assert PASSWORD not in response.text
    return response


async def tested(world: World) -> dict[str, Any]:
    response = await probe(world)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert result["trading_partner_id"] == world.partner_id
    return result


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def dead_endpoint() -> str:
    return f"http://127.0.0.1:{free_port()}/x12"


@pytest.mark.parametrize("transport", ["x12-http", "core-mime"])
async def test_the_probe_reaches_the_sandbox_and_gets_a_271(
    make_tenant: TenantFactory, api: httpx.AsyncClient, sandbox: SandboxClient, transport: str
) -> None:
    world = await make_world(make_tenant, api, sandbox)
    await world.add_partner(transport)

    result = await tested(world)

    assert result["ok"] is True, result
    assert result["outcome"].startswith(f"Connected: {world.partner_name} answered with a 271")
    assert result["response_kind"] == "271"
    assert result["elapsed_ms"] > 0
    [sent] = await sandbox.requests()
    assert sent["transport"] == transport
    assert sent["subscriber_id"] == PROBE_SUBSCRIBER
    # ISA15: the probe is test data whatever the partner's usage indicator.
    assert sent["x12"].split(sent["x12"][3])[15] == "T"
    assert world.payer_code in sent["x12"]
    assert sent["answer"] == "271"
    if transport == "core-mime":
        # CORE wants a UUID PayloadID: the probe's is its trace number's.
        assert UUID(sent["payload_id"]) == UUID(sent["trace_number"])


@pytest.mark.parametrize("transport", ["x12-http", "core-mime"])
async def test_credentials_the_partner_refuses_say_401_without_the_password(
    make_tenant: TenantFactory, api: httpx.AsyncClient, sandbox: SandboxClient, transport: str
) -> None:
    world = await make_world(make_tenant, api, sandbox)
    await world.add_partner(transport)
    await sandbox.configure(username="x", password="y")

    result = await tested(world)

    assert result["ok"] is False
    assert result["outcome"].startswith(f"HTTP 401 from {world.partner_name}: "), result
    assert result["response_kind"] is None


async def test_an_endpoint_nobody_listens_on_says_connection_failed(world: World) -> None:
    await world.patch_partner(endpoint_url=dead_endpoint())

    result = await tested(world)

    assert result["ok"] is False
    assert result["outcome"].startswith(f"Connection failed to {world.partner_name}: "), result
    assert result["elapsed_ms"] is None


async def test_a_partner_that_hangs_times_out_after_its_timeout(world: World) -> None:
    # The probe asks about CONNECTIVITYTEST, which no sandbox rule matches, so the
    # sandbox's latency (applied to every request) stands in for SBX-HANG.
    await world.patch_partner(timeout_seconds=1)
    await world.sandbox.configure(latency_ms=10_000)
    started = asyncio.get_running_loop().time()

    result = await tested(world)

    took = asyncio.get_running_loop().time() - started
    assert result["ok"] is False
    assert result["outcome"] == "Timeout after 1 s"
    assert 0.9 <= took < 5


async def test_probes_spend_no_cap_or_token_and_never_open_the_circuit(
    make_tenant: TenantFactory, api: httpx.AsyncClient, sandbox: SandboxClient, redis: Redis
) -> None:
    world = await make_world(make_tenant, api, sandbox)
    await world.add_partner(
        endpoint_url=dead_endpoint(),
        max_requests_per_second=1,
        payer_limits=[{"payer_id": str(world.payer_id), "daily_request_cap": 1}],
    )
    first = await world.member("SBX-ACTIVE")
    second = await world.member("SBX-ACTIVE")
    limits = Limits(redis, prefix=f"rcm:{world.tenant.tenant_id}")
    started = asyncio.get_running_loop().time()

    failed = [await tested(world) for _ in range(6)]
    breaker = await limits.breaker_state(UUID(world.partner_id))
    await world.patch_partner(endpoint_url=f"{sandbox.base_url}/x12")
    reached = await tested(world)
    took = asyncio.get_running_loop().time() - started
    received = (await world.check(first)).json()
    capped = (await world.check(second)).json()

    assert all(not r["ok"] and r["outcome"].startswith("Connection failed") for r in failed)
    # Six failures would have opened the breaker had they counted.
    assert (breaker.state, breaker.failures) == ("closed", 0)
    assert reached["ok"] is True
    # At one request per second, seven probes would take six seconds had they waited.
    assert took < 3
    assert received["status"] == "RECEIVED", received
    # The cap of one was still whole for the check: the probes spent none of it.
    assert capped["error"] == f"Daily cap of 1 requests reached for payer {world.payer_code}"
    sent = [r["subscriber_id"] for r in await sandbox.requests()]
    assert sent == [PROBE_SUBSCRIBER, "SBX-ACTIVE"]


async def test_the_probe_is_audited_as_execute(world: World) -> None:
    await tested(world)
    await world.patch_partner(endpoint_url=dead_endpoint())
    await tested(world)

    rows = [r for r in await audit_rows(world.tenant, "trading_partner") if r.action == "EXECUTE"]

    assert [(str(r.entity_id), r.detail) for r in rows] == [
        (world.partner_id, {"test": "connectivity", "ok": True}),
        (world.partner_id, {"test": "connectivity", "ok": False}),
    ]
    assert all(r.actor == "tester" for r in rows)


async def test_an_unknown_partner_is_404(world: World) -> None:
    response = await probe(world, partner_id=str(uuid4()))

    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await world.sandbox.requests() == []


async def test_the_probe_needs_config_update(world: World) -> None:
    response = await probe(world, perms=WRITE)

    assert response.status_code == 403, response.text
    assert await world.sandbox.requests() == []
    assert not [
        r for r in await audit_rows(world.tenant, "trading_partner") if r.action == "EXECUTE"
    ]
