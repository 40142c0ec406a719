"""Gateway fixtures: the gateway on a real socket in front of real services, and a small
echo service that reports what reached it (headers, body digest) and can be made slow."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.app import create_app
from gateway.config import GatewaySettings
from tests.conftest import RunningServer

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def echo_app() -> Starlette:
    """Answers any path with what it received; ``?sleep=<seconds>`` answers that much later.

    Its response carries hop-by-hop headers (and one named in ``Connection``) that the
    gateway must not return, and an ETag that it must."""

    async def echo(request: Request) -> JSONResponse:
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
        if "sleep" in request.query_params:
            await asyncio.sleep(float(request.query_params["sleep"]))
        return JSONResponse(
            {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "headers": [
                    [k.decode("latin-1"), v.decode("latin-1")] for k, v in request.headers.raw
                ],
                "body_size": size,
                "body_sha256": digest.hexdigest(),
            },
            headers={
                "Connection": "x-upstream-hop",
                "X-Upstream-Hop": "must-not-leave",
                "Keep-Alive": "timeout=5",
                "Proxy-Authenticate": "Basic",
                "ETag": '"v7"',
                "X-Request-ID": request.headers.get("x-request-id", ""),
            },
        )

    return Starlette(routes=[Route("/{path:path}", echo, methods=METHODS)])


def received(body: dict[str, Any], name: str) -> list[str]:
    """Values of a header as the echo service received it."""
    return [value for key, value in body["headers"] if key.lower() == name.lower()]


def gateway_settings(**values: Any) -> GatewaySettings:
    return GatewaySettings(**{"LOG_FORMAT": "console", **values})


@asynccontextmanager
async def running_gateway(**values: Any) -> AsyncIterator[RunningServer]:
    server = RunningServer(create_app(gateway_settings(**values)))
    # As main() runs it: the gateway writes X-Forwarded-* from the peer it sees.
    server.server.config.proxy_headers = False
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@asynccontextmanager
async def client_for(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
async def echo_server() -> AsyncIterator[RunningServer]:
    server = await RunningServer(echo_app()).start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def gateway_server(
    sweeps_server: RunningServer, contracts_server: RunningServer
) -> AsyncIterator[RunningServer]:
    """The gateway in front of both real services."""
    async with running_gateway(
        SWEEPS_API_URL=sweeps_server.url,
        CONTRACTS_API_URL=contracts_server.url,
        CORS_ORIGINS="https://spa.example.com",
    ) as server:
        yield server


@pytest.fixture
async def gateway(gateway_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(gateway_server) as client:
        yield client


@pytest.fixture(scope="session")
async def echo_gateway_server(echo_server: RunningServer) -> AsyncIterator[RunningServer]:
    """The gateway with the echo service standing in for both services, with short
    timeouts: 0.5 s on ordinary routes, 3 s on the slow ones."""
    async with running_gateway(
        SWEEPS_API_URL=echo_server.url,
        CONTRACTS_API_URL=echo_server.url,
        GATEWAY_TIMEOUT_SECONDS=0.5,
        GATEWAY_SLOW_TIMEOUT_SECONDS=3,
    ) as server:
        yield server


@pytest.fixture
async def echo_gateway(echo_gateway_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(echo_gateway_server) as client:
        yield client
