"""Two minimal forwarding proxies that differ only in their HTTP client, to measure the
client on its own: ``python -m bench.forwarders --client aiohttp|httpx --port P --upstream URL``.

Both are bare ASGI apps with one shared pooled client, no middleware and no logging,
reading the upstream response whole (it is ~1 KB): what is left is the client's cost.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httpx
import uvicorn
from starlette.types import Receive, Scope, Send

Forward = Callable[
    [str, str, list[tuple[str, str]]], Awaitable[tuple[int, list[tuple[bytes, bytes]], bytes]]
]
_SKIP = {b"host", b"connection", b"keep-alive", b"transfer-encoding", b"date", b"server"}


@asynccontextmanager
async def aiohttp_client(upstream: str) -> AsyncIterator[Forward]:
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=4),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
    )

    async def forward(
        method: str, target: str, headers: list[tuple[str, str]]
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        async with session.request(method, upstream + target, headers=headers) as response:
            return response.status, list(response.raw_headers), await response.read()

    try:
        yield forward
    finally:
        await session.close()


@asynccontextmanager
async def httpx_client(upstream: str) -> AsyncIterator[Forward]:
    client = httpx.AsyncClient(
        base_url=upstream,
        timeout=10,
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=4),
    )

    async def forward(
        method: str, target: str, headers: list[tuple[str, str]]
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        response = await client.request(method, target, headers=headers)
        return response.status_code, list(response.headers.raw), response.content

    try:
        yield forward
    finally:
        await client.aclose()


CLIENTS: dict[str, Callable[[str], Any]] = {"aiohttp": aiohttp_client, "httpx": httpx_client}


def make_app(client: str, upstream: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    state: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    state["cm"] = CLIENTS[client](upstream)
                    state["forward"] = await state["cm"].__aenter__()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await state["cm"].__aexit__(None, None, None)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        target = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k not in _SKIP
        ]
        status, raw, body = await state["forward"](scope["method"], target, headers)
        out = [(k.lower(), v) for k, v in raw if k.lower() not in _SKIP]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": body})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--client", choices=sorted(CLIENTS), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    uvicorn.run(
        make_app(args.client, args.upstream.rstrip("/")),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
