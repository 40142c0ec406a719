from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import AsyncIterator

import httpx

from rcm_kit.tenancy import Tenant
from tests.conftest import RunningServer, auth, free_port
from tests.gateway.conftest import client_for, echo_app, received, running_gateway

PROBLEM = "application/problem+json"
READER = "config.read,eligibility.read"


async def test_payers_come_from_contracts_and_facilities_from_sweeps(
    gateway: httpx.AsyncClient,
    contracts: httpx.AsyncClient,
    sweeps: httpx.AsyncClient,
    tenant_a: Tenant,
) -> None:
    headers = auth(tenant_a, READER)
    for path, direct in (("/api/v1/payers", contracts), ("/api/v1/facilities", sweeps)):
        through = await gateway.get(path, headers=headers)
        assert through.status_code == 200, through.text
        assert through.json() == (await direct.get(path, headers=headers)).json()
        assert "rcm-gateway" in through.headers["via"]

    # Each service answers 404 for the other's route: the owner is the one that answered.
    assert (await sweeps.get("/api/v1/payers", headers=headers)).status_code == 404
    assert (await contracts.get("/api/v1/facilities", headers=headers)).status_code == 404
    billing = await gateway.get("/api/v1/billing-entities", headers=headers)
    assert billing.status_code == 200, billing.text


async def test_query_strings_reach_the_service(
    gateway: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    response = await gateway.get(
        "/api/v1/payers", params={"limit": "0"}, headers=auth(tenant_a, READER)
    )
    assert response.status_code == 422  # the service validated the forwarded ?limit=0
    assert response.headers["content-type"] == PROBLEM


async def test_a_services_401_passes_through_as_problem_json(gateway: httpx.AsyncClient) -> None:
    for path in ("/api/v1/payers", "/api/v1/facilities"):
        response = await gateway.get(path)
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["status"] == 401
        assert response.headers["www-authenticate"] == "Bearer"


async def test_a_path_no_service_owns_is_404_problem_json(gateway: httpx.AsyncClient) -> None:
    for path in ("/api/v1/nothing-here", "/api/v1/payersx", "/api/v1/payers/../eligibility/x"):
        response = await gateway.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["detail"] == "No route matches this path."
        assert response.headers["x-request-id"]


async def test_the_request_id_round_trips_and_reaches_the_service(
    echo_gateway: httpx.AsyncClient, gateway: httpx.AsyncClient
) -> None:
    sent = "req-" + secrets.token_hex(6)
    response = await echo_gateway.get("/api/v1/payers", headers={"X-Request-ID": sent})
    assert response.headers["x-request-id"] == sent
    assert received(response.json(), "x-request-id") == [sent]

    # None sent: the gateway makes one, returns it and forwards the same one.
    response = await echo_gateway.get("/api/v1/facilities")
    made = response.headers["x-request-id"]
    assert made
    assert received(response.json(), "x-request-id") == [made]

    # And through a real service.
    response = await gateway.get("/api/v1/payers", headers={"X-Request-ID": sent})
    assert response.status_code == 401
    assert response.headers["x-request-id"] == sent


async def test_each_prefix_reaches_its_service_with_the_path_unchanged(
    echo_server: RunningServer,
) -> None:
    sweeps = await RunningServer(echo_app()).start()
    try:
        async with (
            running_gateway(SWEEPS_API_URL=sweeps.url, CONTRACTS_API_URL=echo_server.url) as gw,
            client_for(gw) as client,
        ):
            expected = {
                "/api/v1/eligibility/sweeps/runs": sweeps.port,
                "/api/v1/admin/trading-partners/abc/test": sweeps.port,
                "/api/v1/facilities": sweeps.port,
                "/api/v1/members/m-1": sweeps.port,
                "/api/v1/admin/contracts/summary": echo_server.port,
                "/api/v1/payers/p-1/contracts": echo_server.port,
                "/api/v1/billing-entities": echo_server.port,
            }
            for path, port in expected.items():
                response = await client.post(path + "?a=1&b=%2F")
                assert response.status_code == 200, path
                body = response.json()
                assert body["path"] == path
                assert body["query"] == "a=1&b=%2F"
                assert received(body, "host") == [f"127.0.0.1:{port}"], path
    finally:
        await sweeps.stop()


async def test_hop_by_hop_headers_are_not_forwarded_either_way(
    echo_gateway: httpx.AsyncClient, echo_gateway_server: RunningServer
) -> None:
    response = await echo_gateway.get(
        "/api/v1/members",
        headers={
            "Connection": "keep-alive, x-client-hop",
            "X-Client-Hop": "must-not-arrive",
            "Keep-Alive": "timeout=30",
            "TE": "trailers",
            "Trailer": "x-checksum",
            "Proxy-Authorization": "Basic c2VjcmV0",
            "X-Forwarded-For": "203.0.113.9",
            "Authorization": "Bearer end-to-end",
            "Via": "1.1 edge-lb",
        },
    )
    assert response.status_code == 200
    body = response.json()
    names = {key.lower() for key, _ in body["headers"]}
    for hop in ("x-client-hop", "keep-alive", "te", "trailer", "proxy-authorization"):
        assert hop not in names, hop
    assert received(body, "authorization") == ["Bearer end-to-end"]
    assert received(body, "x-forwarded-for") == ["203.0.113.9, 127.0.0.1"]
    assert received(body, "x-forwarded-proto") == ["http"]
    assert received(body, "x-forwarded-host") == [f"127.0.0.1:{echo_gateway_server.port}"]
    assert received(body, "via") == ["1.1 edge-lb, 1.1 rcm-gateway"]

    # The service's own hop-by-hop headers stay on its side too.
    assert "x-upstream-hop" not in response.headers
    assert "keep-alive" not in response.headers
    assert "proxy-authenticate" not in response.headers
    assert response.headers["etag"] == '"v7"'
    assert response.headers["via"] == "1.1 rcm-gateway"


async def test_a_streamed_body_of_a_few_megabytes_arrives_intact(
    echo_gateway: httpx.AsyncClient,
) -> None:
    chunk = secrets.token_bytes(64 * 1024)
    count = 48  # 3 MiB, sent chunked: the gateway never knows the length in advance
    expected = hashlib.sha256(chunk * count).hexdigest()

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(count):
            yield chunk

    response = await echo_gateway.post(
        "/api/v1/eligibility/inbound",
        content=chunks(),
        headers={"Content-Type": "application/edi-x12"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["body_size"] == len(chunk) * count
    assert body["body_sha256"] == expected
    assert received(body, "transfer-encoding") == ["chunked"]
    assert received(body, "content-type") == ["application/edi-x12"]

    # With a Content-Length, the service gets the same length.
    payload = secrets.token_bytes(4 * 1024 * 1024)
    response = await echo_gateway.put("/api/v1/admin/contracts/c-1", content=payload)
    body = response.json()
    assert body["body_sha256"] == hashlib.sha256(payload).hexdigest()
    assert received(body, "content-length") == [str(len(payload))]


async def test_a_body_over_the_limit_is_413(echo_server: RunningServer) -> None:
    limit = 256 * 1024
    async with (
        running_gateway(
            SWEEPS_API_URL=echo_server.url,
            CONTRACTS_API_URL=echo_server.url,
            GATEWAY_MAX_BODY_BYTES=limit,
        ) as gw,
        client_for(gw) as client,
    ):
        declared = await client.post("/api/v1/eligibility/inbound", content=b"x" * (limit + 1))
        assert declared.status_code == 413
        assert declared.headers["content-type"] == PROBLEM
        assert str(limit) in declared.json()["detail"]

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield b"y" * (64 * 1024)

        streamed = await client.post("/api/v1/eligibility/inbound", content=chunks())
        assert streamed.status_code == 413
        assert streamed.headers["content-type"] == PROBLEM

        within = await client.post("/api/v1/eligibility/inbound", content=b"z" * limit)
        assert within.status_code == 200
        assert within.json()["body_size"] == limit


async def test_a_stopped_service_is_502_naming_it_within_the_timeout(
    contracts_server: RunningServer,
) -> None:
    sweeps = await RunningServer(echo_app()).start()
    async with (
        running_gateway(
            SWEEPS_API_URL=sweeps.url,
            CONTRACTS_API_URL=contracts_server.url,
            GATEWAY_TIMEOUT_SECONDS=2,
        ) as gw,
        client_for(gw) as client,
    ):
        try:
            await _stopped_service_checks(client, sweeps)
        finally:
            await sweeps.stop()


async def _stopped_service_checks(client: httpx.AsyncClient, sweeps: RunningServer) -> None:
    assert (await client.get("/api/v1/facilities")).status_code == 200
    await sweeps.stop()  # the gateway still holds a pooled connection to it

    started = time.monotonic()
    response = await client.get("/api/v1/facilities")
    assert time.monotonic() - started < 2
    assert response.status_code == 502
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["title"] == "Bad gateway"
    assert problem["detail"].startswith("sweeps service unavailable")
    assert response.headers["x-request-id"]

    # A request with a body fails the same way.
    posted = await client.post("/api/v1/eligibility/checks", json={"member_id": "m"})
    assert posted.status_code == 502

    health = await client.get("/api/v1/health")
    assert health.status_code == 503
    assert health.headers["content-type"] == PROBLEM
    body = health.json()
    assert "sweeps" in body["detail"]
    assert "contracts" not in body["detail"]
    assert body["services"]["sweeps"]["status"] == "unavailable"
    assert body["services"]["contracts"]["status"] == "ready"

    # The gateway itself is still ready: it does not depend on the services.
    assert (await client.get("/readyz")).status_code == 200


async def test_nothing_listening_is_502(contracts_server: RunningServer) -> None:
    async with (
        running_gateway(
            SWEEPS_API_URL=contracts_server.url,
            CONTRACTS_API_URL=f"http://127.0.0.1:{free_port()}",
        ) as gw,
        client_for(gw) as client,
    ):
        response = await client.get("/api/v1/payers")
        assert response.status_code == 502
        assert response.json()["detail"] == "contracts service unavailable (connection refused)"


async def test_a_slow_service_is_504_within_the_routes_timeout(
    echo_gateway: httpx.AsyncClient,
) -> None:
    started = time.monotonic()
    response = await echo_gateway.get("/api/v1/facilities", params={"sleep": "2"})
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"] == "sweeps service did not answer within 0.5 s"
    assert 0.45 < elapsed < 1.5

    # An eligibility check may take longer (the slow timeout, 3 s here).
    response = await echo_gateway.post(
        "/api/v1/eligibility/checks", params={"sleep": "1"}, json={"member_id": "m"}
    )
    assert response.status_code == 200
    # ...but not every POST under /eligibility.
    response = await echo_gateway.post("/api/v1/eligibility/sweeps/runs", params={"sleep": "1"})
    assert response.status_code == 504


async def test_metrics_count_upstream_requests_by_service_and_status(
    gateway: httpx.AsyncClient,
) -> None:
    await gateway.get("/api/v1/payers")
    text = (await gateway.get("/metrics")).text
    assert 'gateway_upstream_requests_total{service="contracts",status="401"}' in text
    assert 'gateway_upstream_duration_seconds_count{service="contracts"}' in text
    assert 'http_requests_total{method="GET",route="/api/v1/payers/**",status="401"}' in text
