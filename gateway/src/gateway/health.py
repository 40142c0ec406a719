"""Liveness and readiness of the gateway, and the platform's health through it.

``/readyz`` says whether the gateway itself can forward (its client sessions are open)
and never depends on the services, so a load balancer keeps routing to a healthy
gateway while a service restarts. ``/api/v1/health`` asks every service's ``/readyz``
at once, each with a short timeout, and names the ones that are not ready.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Literal

import aiohttp
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from gateway.proxy import UpstreamProxy, Upstreams, current_request_id, describe_connection_error
from rcm_kit.errors import problem

router = APIRouter()


class ServiceHealth(BaseModel):
    status: Literal["ready", "unavailable"]
    detail: str | None = Field(default=None, description="Why the service is not ready.")
    checks: dict[str, Any] | None = Field(
        default=None, description="The service's own readiness checks (database, Redis)."
    )
    duration_ms: float = Field(description="How long the service took to answer.")


class PlatformHealth(BaseModel):
    status: Literal["ok"]
    services: dict[str, ServiceHealth]


def get_upstreams(request: Request) -> Upstreams:
    upstreams: Upstreams = request.app.state.upstreams
    return upstreams


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    if get_upstreams(request).is_open:
        return JSONResponse({"status": "ready"})
    return problem(503, "The gateway's upstream clients are not open (starting or stopping).")


async def probe(proxy: UpstreamProxy, timeout_seconds: float, request_id: str) -> ServiceHealth:
    started = time.perf_counter()

    def result(ready: bool, detail: str | None, checks: Any = None) -> ServiceHealth:
        return ServiceHealth(
            status="ready" if ready else "unavailable",
            detail=detail,
            checks=checks if isinstance(checks, dict) else None,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )

    try:
        async with proxy.session.get(
            proxy.base_url + "/readyz",
            headers={"x-request-id": request_id},
            timeout=aiohttp.ClientTimeout(total=timeout_seconds),
            allow_redirects=False,
        ) as response:
            raw = await response.content.read(64 * 1024)
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = None
            checks = payload.get("checks") if isinstance(payload, dict) else None
            if response.status == 200:
                return result(True, None, checks)
            failing = (
                ", ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok")
                if isinstance(checks, dict)
                else ""
            )
            return result(False, failing or f"/readyz answered {response.status}", checks)
    except TimeoutError:
        return result(False, f"no answer within {timeout_seconds:g} s")
    except aiohttp.ClientError as error:
        return result(False, describe_connection_error(error))


@router.get(
    "/api/v1/health",
    tags=["health"],
    response_model=PlatformHealth,
    responses={503: {"description": "A service is not ready; `detail` names it."}},
)
async def platform_health(request: Request) -> JSONResponse:
    """Whether every service behind the gateway is ready (its database and Redis answer).

    200 with each service's state when all are ready; 503 problem+json whose `detail`
    names the services that are not, with the same `services` map. No token needed."""
    upstreams = get_upstreams(request)
    settings = request.app.state.settings
    names = list(upstreams.proxies)
    request_id = current_request_id()
    results = await asyncio.gather(
        *(
            probe(upstreams.proxies[name], settings.GATEWAY_HEALTH_TIMEOUT_SECONDS, request_id)
            for name in names
        )
    )
    services = dict(zip(names, results, strict=True))
    body = {name: health.model_dump(exclude_none=True) for name, health in services.items()}
    down = [name for name, health in services.items() if health.status != "ready"]
    if not names:
        return problem(503, "The gateway is not serving (starting or stopping).", services={})
    if down:
        reasons = "; ".join(f"{name} ({services[name].detail})" for name in down)
        return problem(503, f"Not ready: {reasons}", title="Service unavailable", services=body)
    return JSONResponse({"status": "ok", "services": body})
