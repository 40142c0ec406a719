"""Which service owns which ``/api/v1`` path, how long each route may take, and the
endpoint that hands a matching request to its service's proxy.

Ownership is by path-segment prefix: ``/api/v1/payers`` and everything below it go to
the contract registry, ``/api/v1/payersx`` goes nowhere. Paths are forwarded unchanged,
since each service mounts its routes at ``/api/v1/...`` already. A path that no service
owns is the gateway's own (health, metrics, docs) or a problem+json 404.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from starlette.types import Receive, Scope, Send

from gateway.proxy import Upstreams

SWEEPS = "sweeps"
CONTRACTS = "contracts"
API_PREFIX = "/api/v1/"


@dataclass(frozen=True, slots=True)
class ProxyRoute:
    """A path prefix and the service that owns it."""

    prefix: str
    service: str
    # ``RequestContextMiddleware`` labels access logs and metrics with ``scope["route"].path``.
    path: str = field(init=False)
    _below: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", self.prefix + "/**")
        object.__setattr__(self, "_below", self.prefix + "/")

    def owns(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self._below)


OWNED_PREFIXES: tuple[ProxyRoute, ...] = (
    ProxyRoute("/api/v1/eligibility", SWEEPS),
    ProxyRoute("/api/v1/admin/trading-partners", SWEEPS),
    ProxyRoute("/api/v1/facilities", SWEEPS),
    ProxyRoute("/api/v1/members", SWEEPS),
    ProxyRoute("/api/v1/admin/contracts", CONTRACTS),
    ProxyRoute("/api/v1/payers", CONTRACTS),
    ProxyRoute("/api/v1/billing-entities", CONTRACTS),
)

# Routes where the caller waits while the service talks to someone slower than itself:
# a trading partner answering a 270 in real time (CAQH CORE allows 20 s, partners are
# configured up to 30 s), a 5 MB inbound X12 upload, a partner connectivity test, an
# alert's test mail. Everything else answers in well under a second.
SLOW_ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("POST", re.compile(r"^/api/v1/eligibility/checks/?$")),
    ("POST", re.compile(r"^/api/v1/eligibility/inbound(?:/[^/]+)?/?$")),
    ("POST", re.compile(r"^/api/v1/admin/trading-partners/[^/]+/test/?$")),
    ("POST", re.compile(r"^/api/v1/admin/contracts/expiry-alerts/[^/]+/test/?$")),
)


class RouteTable:
    def __init__(
        self,
        routes: Sequence[ProxyRoute] = OWNED_PREFIXES,
        slow: Sequence[tuple[str, re.Pattern[str]]] = SLOW_ROUTES,
    ) -> None:
        self.routes = tuple(routes)
        self.slow = tuple(slow)

    def match(self, path: str) -> ProxyRoute | None:
        if not path.startswith(API_PREFIX) or _has_dot_segment(path):
            return None
        for route in self.routes:
            if route.owns(path):
                return route
        return None

    def owner(self, path: str) -> str | None:
        route = self.match(path)
        return route.service if route else None

    def is_slow(self, method: str, path: str) -> bool:
        return any(method == m and pattern.match(path) for m, pattern in self.slow)


def _has_dot_segment(path: str) -> bool:
    # "/api/v1/payers/../eligibility/..." must not borrow the payers route's owner.
    return "/." in path and any(segment in (".", "..") for segment in path.split("/"))


class ProxyEndpoint:
    """The ASGI app behind the edge middleware for every path a service owns: hands the
    request to that service's proxy. ``GatewayApp`` only sends it owned paths."""

    def __init__(self, routes: RouteTable, upstreams: Upstreams) -> None:
        self.routes = routes
        self.upstreams = upstreams

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.match(scope["path"])
        if route is None:  # pragma: no cover - GatewayApp checked already
            raise LookupError(f"no service owns {scope['path']!r}")
        scope["route"] = route
        slow = self.routes.is_slow(scope["method"], scope["path"])
        await self.upstreams.forward(route.service, scope, receive, send, slow=slow)
