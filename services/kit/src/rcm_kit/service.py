"""The FastAPI application factory and request dependencies every API service uses.

A route declares what it needs in one dependency::

    scope: Annotated[TenantScope, tenant_scope(CONFIG_READ, ELIGIBILITY_READ)]

which verifies the bearer token (401), checks the permission (403), refuses an unknown
or suspended tenant (403) and opens one transaction on the tenant's database. The
transaction commits when the endpoint returns and rolls back when it raises, before
the response leaves, so a client never sees a success that was not stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import JSONResponse

from rcm_kit.auth import Principal, TokenVerifier, bearer_token
from rcm_kit.clock import Clock, SystemClock
from rcm_kit.db import TenantConnectionResolver, create_engine
from rcm_kit.errors import install_error_handlers
from rcm_kit.logging import bind_context, get_logger
from rcm_kit.settings import ApiSettings
from rcm_kit.tenancy import Tenant, TenantDirectory
from rcm_kit.web import RequestContextMiddleware, metrics_response

log = get_logger(__name__)


@dataclass
class Runtime:
    """Long-lived resources of one API process, built in the lifespan."""

    settings: ApiSettings
    directory: TenantDirectory
    verifier: TokenVerifier
    redis: Redis
    clock: Clock
    extras: dict[str, Any] = field(default_factory=dict)
    # Called first on shutdown, last added first: what ``on_startup`` opened.
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: ApiSettings, *, app_name: str, clock: Clock | None = None) -> Runtime:
        master = create_engine(settings.DATABASE_URL, pool_size=5, app_name=app_name)
        resolver = TenantConnectionResolver(
            pool_size=settings.TENANT_POOL_SIZE,
            max_engines=settings.MAX_TENANT_ENGINES,
            app_name=app_name,
        )
        return cls(
            settings=settings,
            directory=TenantDirectory(master, resolver, settings.TENANT_CACHE_SECONDS),
            verifier=TokenVerifier(
                secret=settings.JWT_SECRET,
                jwks_url=settings.JWT_JWKS_URL,
                issuer=settings.JWT_ISSUER,
                audience=settings.JWT_AUDIENCE,
            ),
            redis=Redis.from_url(settings.REDIS_URL),
            clock=clock or SystemClock(),
        )

    async def close(self) -> None:
        for close in reversed(self.closers):
            await close()
        await self.directory.dispose()
        await self.redis.aclose()


@dataclass(frozen=True)
class TenantScope:
    """Who is calling, for which tenant, and the request's unit of work."""

    principal: Principal
    tenant: Tenant
    session: AsyncSession
    runtime: Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


_bearer = HTTPBearer(auto_error=False, description="JWT with tenant_id and perms claims")


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    runtime = get_runtime(request)
    token = bearer_token(
        request.headers.get("authorization")
        if credentials is None
        else f"Bearer {credentials.credentials}"
    )
    principal = await runtime.verifier.verify(token)
    bind_context(tenant_id=str(principal.tenant_id))
    return principal


def tenant_scope(*permissions: str) -> Any:
    """Dependency: authenticated, permitted (any of ``permissions``), one transaction."""

    async def dependency(
        request: Request, principal: Annotated[Principal, Depends(authenticate)]
    ) -> AsyncIterator[TenantScope]:
        principal.require_any(*permissions)
        runtime = get_runtime(request)
        tenant = await runtime.directory.require_active(principal.tenant_id)
        async with runtime.directory.transaction(tenant) as session:
            yield TenantScope(principal, tenant, session, runtime)

    # Lets tests and docs read which permissions a route accepts.
    dependency.permissions = permissions  # type: ignore[attr-defined]
    return Depends(dependency, scope="function")


async def _ready(runtime: Runtime) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        async with runtime.directory.master_engine.connect() as conn:
            await conn.execute(sa.text("select 1"))
        checks["database"] = "ok"
    except Exception as error:
        checks["database"] = f"unavailable: {type(error).__name__}"
    try:
        await runtime.redis.ping()
        checks["redis"] = "ok"
    except Exception as error:
        checks["redis"] = f"unavailable: {type(error).__name__}"
    return checks


def create_service_app(
    *,
    title: str,
    description: str,
    settings: ApiSettings,
    routers: Sequence[APIRouter],
    app_name: str,
    clock: Clock | None = None,
    on_startup: Callable[[Runtime], Awaitable[None]] | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings, app_name=app_name, clock=clock)
        app.state.runtime = runtime
        if on_startup is not None:
            await on_startup(runtime)
        log.info("service.started", service=app_name)
        try:
            yield
        finally:
            await runtime.close()

    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan)
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.MAX_BODY_BYTES)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        checks = await _ready(get_runtime(request))
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )

    app.add_api_route("/metrics", metrics_response, include_in_schema=False)
    for router in routers:
        app.include_router(router)
    return app
