"""Forward one request to the service that owns it, streaming both bodies.

The upstream client is ``aiohttp``, one pooled ``ClientSession`` per service, chosen by
measurement rather than habit. The issue measured a Starlette proxy in front of a ~1 KB
JSON endpoint on a 2-core machine at 0.09x of direct throughput with a shared
``httpx.AsyncClient`` (two thirds of its time in httpcore's connection-pool
bookkeeping) and 0.45x with ``aiohttp``. ``make bench`` repeats the comparison with two
minimal forwarders that differ only in the client: in front of contracts-api, httpx
reached 0.24-0.49x of direct and spent 4.5-8 ms of CPU per request, aiohttp 0.9-1.1x and
about 0.5 ms. httpx stays the right client for the product's other outbound calls,
where request rates are low.

Errors map to problem+json: a service that refuses or drops the connection is a 502
naming it, one that does not answer within the route's timeout a 504; the caller never
hangs. Once the response has started, an upstream failure can only cut the response
short, which is what the client then sees.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field

import aiohttp
from prometheus_client import Counter, Histogram
from starlette.types import Message, Receive, Scope, Send
from yarl import URL

from rcm_kit.errors import problem
from rcm_kit.logging import current_request_id as request_id_in_context
from rcm_kit.logging import get_logger

log = get_logger("gateway.proxy")

# Hop-by-hop headers (RFC 9110 section 7.6.1) are about one connection, never forwarded.
# ``host`` is the upstream's own, ``expect`` is answered here (uvicorn sends the 100).
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
_NOT_FORWARDED = HOP_BY_HOP | {
    b"host",
    b"expect",
    b"via",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"x-request-id",
}
# uvicorn adds its own ``date`` (and ``server`` when enabled); the service's would repeat it.
_NOT_RETURNED = HOP_BY_HOP | {b"date", b"server"}
VIA_NAME = "rcm-gateway"
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})

UPSTREAM_REQUESTS = Counter(
    "gateway_upstream_requests_total",
    "Requests forwarded to a service, by service and status ('timeout', 'unavailable' when "
    "no answer came)",
    ["service", "status"],
)
UPSTREAM_LATENCY = Histogram(
    "gateway_upstream_duration_seconds",
    "Time from forwarding a request until the service's response headers arrive",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class ClientDisconnected(Exception):
    """The caller went away while its request body was being forwarded."""


def current_request_id() -> str:
    """The id ``RequestContextMiddleware`` took or made for this request."""
    return request_id_in_context() or uuid.uuid4().hex


def describe_connection_error(error: BaseException) -> str:
    """Why a service could not be reached, in words that name no internal address."""
    if isinstance(error, aiohttp.ClientConnectorError):
        if isinstance(error.os_error, ConnectionRefusedError):
            return "connection refused"
        return "cannot connect"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "connection closed before an answer"
    if isinstance(error, aiohttp.ClientResponseError | aiohttp.ClientPayloadError):
        return "malformed answer"
    return "connection failed"


def forwarded_headers(scope: Scope, request_id: str) -> tuple[list[tuple[str, str]], bool]:
    """The request's end-to-end headers plus X-Forwarded-*, Via and the request id, and
    whether the request has a body."""
    raw: Iterable[tuple[bytes, bytes]] = scope["headers"]
    named: set[bytes] = set()
    for name, value in raw:
        if name == b"connection":
            named.update(token.strip().lower() for token in value.split(b","))
    headers: list[tuple[str, str]] = []
    forwarded_for: list[str] = []
    via: list[str] = []
    host = ""
    has_body = False
    for name, value in raw:
        if name in _NOT_FORWARDED or name in named or name.startswith(b"proxy-"):
            if name == b"x-forwarded-for":
                forwarded_for.append(value.decode("latin-1"))
            elif name == b"via":
                via.append(value.decode("latin-1"))
            elif name == b"host":
                host = value.decode("latin-1")
            elif name == b"transfer-encoding":
                has_body = True
            continue
        if name == b"content-length":
            has_body = value != b"0"
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
    client = scope.get("client")
    forwarded_for.append(client[0] if client else "unknown")
    via.append(f"{scope.get('http_version', '1.1')} {VIA_NAME}")
    headers.append(("x-forwarded-for", ", ".join(forwarded_for)))
    headers.append(("x-forwarded-proto", scope.get("scheme", "http")))
    if host:
        headers.append(("x-forwarded-host", host))
    headers.append(("via", ", ".join(via)))
    headers.append(("x-request-id", request_id))
    return headers, has_body


def returned_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The service's end-to-end response headers, plus our Via."""
    pairs = [(name.lower(), value) for name, value in raw]
    named: set[bytes] = set()
    for name, value in pairs:
        if name == b"connection":
            named.update(token.strip().lower() for token in value.split(b","))
    headers = [
        (name, value)
        for name, value in pairs
        if name not in _NOT_RETURNED and name not in named and not name.startswith(b"proxy-")
    ]
    headers.append((b"via", f"1.1 {VIA_NAME}".encode()))
    return headers


class RequestBody:
    """The caller's body as an async iterator of ASGI chunks, never held whole.

    A failure while reading (the caller leaving, or ``RequestContextMiddleware`` refusing
    a body over the limit) reaches aiohttp's writer task, which turns it into a generic
    connection error; the original is kept in ``error`` so the proxy can re-raise it.
    """

    __slots__ = ("error", "first", "receive")

    def __init__(self, first: bytes, receive: Receive) -> None:
        self.first = first
        self.receive = receive
        self.error: BaseException | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        if self.first:
            yield self.first
        while True:
            try:
                message = await self.receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnected
            except BaseException as error:
                self.error = error
                raise
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return


@dataclass(slots=True)
class UpstreamProxy:
    """Forwards requests to one service through an injected, pooled aiohttp session."""

    service: str
    base_url: str
    session: aiohttp.ClientSession
    timeout_seconds: float
    slow_timeout_seconds: float
    connect_timeout_seconds: float
    _timeout: aiohttp.ClientTimeout = field(init=False, repr=False)
    _slow_timeout: aiohttp.ClientTimeout = field(init=False, repr=False)
    _latency: Histogram = field(init=False, repr=False)
    _counters: dict[str, Counter] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        # ``total`` bounds the whole exchange (both bodies included), so no service can
        # keep a caller waiting past the route's timeout, however it stalls.
        self._timeout = aiohttp.ClientTimeout(
            total=self.timeout_seconds, sock_connect=self.connect_timeout_seconds
        )
        self._slow_timeout = aiohttp.ClientTimeout(
            total=self.slow_timeout_seconds, sock_connect=self.connect_timeout_seconds
        )
        self._latency = UPSTREAM_LATENCY.labels(self.service)

    def _count(self, status: str) -> None:
        counter = self._counters.get(status)
        if counter is None:
            counter = self._counters[status] = UPSTREAM_REQUESTS.labels(self.service, status)
        counter.inc()

    async def forward(self, scope: Scope, receive: Receive, send: Send, *, slow: bool) -> None:
        method: str = scope["method"]
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target = target + b"?" + scope["query_string"]
        url = URL(self.base_url + target.decode("latin-1"), encoded=True)
        headers, has_body = forwarded_headers(scope, current_request_id())
        timeout = self._slow_timeout if slow else self._timeout

        data: bytes | AsyncIterator[bytes] | None = None
        body: RequestBody | None = None
        if has_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            if message.get("more_body", False):
                body = RequestBody(message.get("body", b""), receive)
                data = body.chunks()
            else:
                data = message.get("body", b"")

        # A pooled connection the service closed while idle fails before any answer:
        # a request without a body and without side effects is safe to send once more.
        attempts = 2 if method in _IDEMPOTENT and not has_body else 1
        started = time.perf_counter()
        response_started = False
        failure: Exception | None = None
        for attempt in range(attempts):
            try:
                async with self.session.request(
                    method, url, headers=headers, data=data, timeout=timeout, allow_redirects=False
                ) as upstream:
                    self._latency.observe(time.perf_counter() - started)
                    self._count(str(upstream.status))
                    await send(
                        {
                            "type": "http.response.start",
                            "status": upstream.status,
                            "headers": returned_headers(upstream.raw_headers),
                        }
                    )
                    response_started = True
                    await self._relay(upstream, send)
                return
            except aiohttp.ServerDisconnectedError as error:
                if attempt + 1 < attempts and not response_started:
                    continue
                failure = error
            except (TimeoutError, aiohttp.ClientError) as error:
                failure = error
            break
        assert failure is not None
        await self._failed(scope, send, body, response_started, failure, slow)

    async def _relay(self, upstream: aiohttp.ClientResponse, send: Send) -> None:
        content = upstream.content
        while True:
            chunk = await content.readany()
            if not chunk:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            more = not content.at_eof()
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
            if not more:
                return

    async def _failed(
        self,
        scope: Scope,
        send: Send,
        body: RequestBody | None,
        response_started: bool,
        error: Exception,
        slow: bool,
    ) -> None:
        if body is not None and body.error is not None:
            if isinstance(body.error, ClientDisconnected):
                return
            # e.g. the body limit: RequestContextMiddleware answers 413 for it
            raise body.error
        timed_out = isinstance(error, TimeoutError)
        if response_started:
            # Headers are out: the only honest signal left is a truncated response.
            log.warning(
                "proxy.upstream_failed_mid_response",
                service=self.service,
                error=type(error).__name__,
            )
            return
        if timed_out:
            self._count("timeout")
            seconds = self.slow_timeout_seconds if slow else self.timeout_seconds
            log.warning("proxy.upstream_timeout", service=self.service, timeout_seconds=seconds)
            response = problem(
                504,
                f"{self.service} service did not answer within {seconds:g} s",
                title="Gateway timeout",
            )
        else:
            self._count("unavailable")
            reason = describe_connection_error(error)
            log.warning("proxy.upstream_unavailable", service=self.service, reason=reason)
            response = problem(
                502, f"{self.service} service unavailable ({reason})", title="Bad gateway"
            )
        await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def create_session(*, connections: int, keepalive_seconds: float) -> aiohttp.ClientSession:
    """One pooled session for one service. Must be created inside the running loop."""
    connector = aiohttp.TCPConnector(
        limit=connections, limit_per_host=0, keepalive_timeout=keepalive_seconds
    )
    return aiohttp.ClientSession(
        connector=connector,
        # Cookies belong to the caller, never to a jar shared by every caller.
        cookie_jar=aiohttp.DummyCookieJar(),
        # Bodies pass through as the service encoded them, and no header the caller
        # did not send is invented (an Accept-Encoding would make services compress).
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        trust_env=False,
    )


@dataclass
class Upstreams:
    """The services' proxies and their sessions: opened in the app's lifespan."""

    urls: Mapping[str, str]
    timeout_seconds: float
    slow_timeout_seconds: float
    connect_timeout_seconds: float
    connections: int
    keepalive_seconds: float
    proxies: dict[str, UpstreamProxy] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return bool(self.proxies) and not any(p.session.closed for p in self.proxies.values())

    async def open(self) -> None:
        for service, url in self.urls.items():
            self.proxies[service] = UpstreamProxy(
                service=service,
                base_url=url,
                session=create_session(
                    connections=self.connections, keepalive_seconds=self.keepalive_seconds
                ),
                timeout_seconds=self.timeout_seconds,
                slow_timeout_seconds=self.slow_timeout_seconds,
                connect_timeout_seconds=self.connect_timeout_seconds,
            )

    async def close(self) -> None:
        proxies, self.proxies = self.proxies, {}
        for proxy in proxies.values():
            await proxy.session.close()

    async def forward(
        self, service: str, scope: Scope, receive: Receive, send: Send, *, slow: bool
    ) -> None:
        proxy = self.proxies.get(service)
        if proxy is None:
            response = problem(503, "The gateway is not serving (starting or stopping).")
            await response(scope, receive, send)
            return
        await proxy.forward(scope, receive, send, slow=slow)
