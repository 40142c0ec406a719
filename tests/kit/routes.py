"""Introspection of the services' routes, so auth tests cover every route, including new ones."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute


@dataclass(frozen=True)
class ProtectedRoute:
    method: str
    path: str
    permissions: tuple[str, ...]

    def url(self) -> str:
        return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _marker(route: APIRoute, name: str) -> Any:
    stack = list(route.dependant.dependencies)
    while stack:
        dependant = stack.pop()
        value = getattr(dependant.call, name, None)
        if value is not None:
            return value
        stack.extend(dependant.dependencies)
    return None


def _permissions(route: APIRoute) -> tuple[str, ...] | None:
    perms = _marker(route, "permissions")
    return tuple(perms) if perms is not None else None


def credential_routes(app: FastAPI) -> list[str]:
    """Routes authenticated by a partner credential instead of a JWT (tested apart)."""
    return [
        f"{sorted(r.methods)} {r.path}"
        for r in api_routes(app.routes)
        if _marker(r, "authenticates") is not None
    ]


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, also inside routers that FastAPI includes lazily."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from api_routes(inner.routes)


def protected_routes(app: FastAPI) -> Iterator[ProtectedRoute]:
    for route in api_routes(app.routes):
        if not isinstance(route, APIRoute):
            continue
        perms = _permissions(route)
        for method in sorted(route.methods):
            if perms is None:
                continue
            yield ProtectedRoute(method, route.path, perms)


def unprotected_api_routes(app: FastAPI) -> list[str]:
    """Routes under /api/v1 with no permission check: should be none."""
    return [
        f"{sorted(r.methods)} {r.path}"
        for r in api_routes(app.routes)
        if r.path.startswith("/api/")
        and _permissions(r) is None
        and _marker(r, "authenticates") is None
    ]
