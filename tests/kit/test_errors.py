"""problem+json for every error, request ids on every response, never a stack trace."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter

from rcm_kit.auth import CONFIG_READ
from rcm_kit.service import TenantScope, create_service_app, tenant_scope
from rcm_kit.settings import ApiSettings
from rcm_kit.tenancy import Tenant
from tests.conftest import RunningServer, auth, service_env

boom = APIRouter()


@boom.get("/api/v1/boom")
async def explode(scope: TenantScope = tenant_scope(CONFIG_READ)) -> dict[str, str]:
    raise RuntimeError("secret internal detail")


@boom.post("/api/v1/echo")
async def echo(body: dict[str, int], scope: TenantScope = tenant_scope(CONFIG_READ)) -> dict:
    return body


@pytest.fixture(scope="module")
async def app_server(master_url: str, redis_url: str) -> AsyncIterator[RunningServer]:
    settings = ApiSettings(**service_env(master_url, redis_url, MAX_BODY_BYTES=2048))
    app = create_service_app(
        title="t", description="t", settings=settings, routers=[boom], app_name="test"
    )
    server = await RunningServer(app).start()
    yield server
    await server.stop()


@pytest.fixture
async def client(app_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=app_server.url) as client:
        yield client


def _problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert response.headers["x-request-id"]
    return body


async def test_unexpected_error_is_a_generic_500_with_the_request_id(
    client: httpx.AsyncClient, tenant_a: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    response = await client.get(
        "/api/v1/boom", headers={**auth(tenant_a, "config.read"), "X-Request-ID": "req-500-abc"}
    )
    body = _problem(response, 500)
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
    assert body["request_id"] == "req-500-abc"
    assert response.headers["x-request-id"] == "req-500-abc"


async def test_unknown_route_and_wrong_method(client: httpx.AsyncClient) -> None:
    _problem(await client.get("/api/v1/nowhere"), 404)
    _problem(await client.delete("/api/v1/boom"), 405)


async def test_validation_names_every_bad_field(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    response = await client.post(
        "/api/v1/echo", json={"a": "x", "b": "y"}, headers=auth(tenant_a, "config.read")
    )
    body = _problem(response, 422)
    assert sorted(e["loc"][-1] for e in body["errors"]) == ["a", "b"]
    assert all(e["msg"] for e in body["errors"])


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    big = {f"k{i}": i for i in range(500)}
    response = await client.post("/api/v1/echo", json=big, headers=auth(tenant_a, "config.read"))
    _problem(response, 413)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(10):
            yield b"x" * 1024

    streamed = await client.post(
        "/api/v1/echo", content=chunks(), headers=auth(tenant_a, "config.read")
    )
    _problem(streamed, 413)


async def test_request_id_is_taken_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["x-request-id"] not in ("", "bad id with spaces")
    assert len(made.headers["x-request-id"]) == 32
