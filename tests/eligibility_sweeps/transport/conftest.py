"""Fixtures for the transport tests: a stand-in trading partner on a real 127.0.0.1
socket (aiohttp, so the multipart reader judging our CORE envelopes is not the code
under test), a pooled httpx client, and Redis clients under a prefix of their own."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from uuid import UUID, uuid4

import httpx
import pytest
from aiohttp import BodyPartReader, MultipartWriter, web
from redis.asyncio import Redis

from eligibility_sweeps.models.trading_partner import AuthType, Transport
from eligibility_sweeps.transport import PartnerEndpoint
from tests.conftest import free_port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Received:
    """One request as the partner saw it."""

    headers: dict[str, str]
    body: bytes = b""
    # (name, value, filename, part headers) in wire order, for multipart requests.
    parts: list[tuple[str, str, str | None, dict[str, str]]] = field(default_factory=list)

    def fields(self) -> dict[str, str]:
        return {name: value for name, value, _, _ in self.parts}


class PartnerServer:
    """A trading partner whose answer each test chooses by setting ``handler``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.handler: Handler = _not_set
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._dispatch)
        # Cancelled handlers: a client that gave up must not keep a sleeping handler
        # (and so the server's shutdown) waiting.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/core"

    async def start(self) -> PartnerServer:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        received = Received(headers=dict(request.headers))
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                assert isinstance(part, BodyPartReader), "nested multipart"
                received.parts.append(
                    (part.name or "", await part.text(), part.filename, dict(part.headers))
                )
        else:
            received.body = await request.read()
        self.received.append(received)
        return await self.handler(request)


async def _not_set(request: web.Request) -> web.StreamResponse:
    raise AssertionError("the test did not set a handler")


def core_response(fields: dict[str, str], *, status: int = 200) -> web.Response:
    """A CORE envelope as aiohttp's multipart writer builds it."""
    writer = MultipartWriter("form-data")
    for name, value in fields.items():
        writer.append(value).set_content_disposition("form-data", name=name)
    return web.Response(body=writer, status=status)


@pytest.fixture
async def partner_server() -> AsyncIterator[PartnerServer]:
    server = await PartnerServer().start()
    yield server
    await server.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http_client:
        yield http_client


def endpoint(
    url: str,
    *,
    transport: Transport = Transport.CORE_MIME,
    auth_type: AuthType = AuthType.BASIC,
    username: str | None = "acme-user",
    secret: str | None = "s3cr3t-Pa55word",
    timeout_seconds: int = 5,
    name: str = "Acme Clearinghouse",
    trading_partner_id: UUID | None = None,
) -> PartnerEndpoint:
    return PartnerEndpoint(
        trading_partner_id=trading_partner_id or uuid4(),
        name=name,
        transport=transport,
        endpoint_url=url,
        auth_type=auth_type,
        username=username if auth_type is AuthType.BASIC else None,
        secret=None if auth_type is AuthType.NONE else secret,
        sender_id="SUBMITTER01",
        receiver_id="ACMECH",
        timeout_seconds=timeout_seconds,
    )


@pytest.fixture
async def redis_clients(redis_url: str) -> AsyncIterator[tuple[Redis, Redis]]:
    """Two separate connections, standing in for two worker processes."""
    first, second = Redis.from_url(redis_url), Redis.from_url(redis_url, decode_responses=True)
    yield first, second
    await first.aclose()
    await second.aclose()


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A tenant prefix no other test uses; its keys are deleted afterwards."""
    value = f"rcmtest:{secrets.token_hex(6)}"
    yield value
    cleaner = Redis.from_url(redis_url)
    keys = [key async for key in cleaner.scan_iter(match=f"{value}:*")]
    if keys:
        await cleaner.delete(*keys)
    await cleaner.aclose()


__all__ = ["Received", "core_response", "endpoint"]
