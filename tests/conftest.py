"""Shared fixtures: real PostgreSQL and Redis, a private master database per test session,
tenants provisioned through the product's own code, and services on real sockets.

The session's master database is ``rcmt_<random>``; its tenants' databases are named after
it, and every one of them is dropped when the session ends.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm_kit import migrations, provision
from rcm_kit.auth import issue_token
from rcm_kit.db import create_engine, database_url_for
from rcm_kit.devinfra import resolve_infra
from rcm_kit.plugins import Plugin, load_plugins
from rcm_kit.settings import normalise_database_url
from rcm_kit.tenancy import Tenant

JWT_SECRET = "test-secret-" + secrets.token_hex(16)
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
async def server_url() -> str:
    """The PostgreSQL server to use (a DSN whose database part is ignored)."""
    infra = await resolve_infra(start_embedded=True)
    os.environ.setdefault("REDIS_URL", infra.redis_url)
    return normalise_database_url(infra.database_url)


@pytest.fixture(scope="session")
async def redis_url(server_url: str) -> str:
    return os.environ["REDIS_URL"]


async def drop_databases(server_url: str, prefix: str) -> None:
    await provision.drop_databases(server_url, prefix)


@pytest.fixture(scope="session")
def migrations_dir() -> Path:
    return REPO / "migrations"


@pytest.fixture(scope="session")
def plugins() -> list[Plugin]:
    return load_plugins()


@pytest.fixture(scope="session")
async def master_url(server_url: str, migrations_dir: Path) -> AsyncIterator[str]:
    name = f"rcmt_{secrets.token_hex(4)}"
    url = database_url_for(server_url, name)
    await provision.migrate_master(url, migrations_dir)
    try:
        yield url
    finally:
        await drop_databases(server_url, name)


@pytest.fixture(scope="session")
async def master_engine(master_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(master_url, pool_size=2, app_name="tests")
    yield engine
    await engine.dispose()


TenantFactory = Callable[..., Awaitable[Tenant]]


@pytest.fixture(scope="session")
def make_tenant(
    master_engine: AsyncEngine, plugins: list[Plugin], migrations_dir: Path
) -> TenantFactory:
    async def make(slug: str | None = None, *, timezone: str = "UTC", name: str = "") -> Tenant:
        slug = slug or f"t-{secrets.token_hex(3)}"
        return await provision.create_tenant(
            master_engine, plugins, migrations_dir, slug=slug, name=name or slug, timezone=timezone
        )

    return make


@pytest.fixture(scope="session")
async def tenant_a(make_tenant: TenantFactory) -> Tenant:
    return await make_tenant("alpha")


@pytest.fixture(scope="session")
async def tenant_b(make_tenant: TenantFactory) -> Tenant:
    return await make_tenant("bravo", timezone="America/New_York")


@asynccontextmanager
async def tenant_session(tenant: Tenant) -> AsyncIterator[AsyncSession]:
    """One committed transaction on a tenant's database, for arranging test data."""
    engine = create_engine(tenant.database_url, pool_size=1, app_name="tests")
    try:
        async with async_sessionmaker(engine)() as session, session.begin():
            yield session
    finally:
        await engine.dispose()


def make_token(
    tenant: Tenant | UUID,
    perms: list[str] | str,
    *,
    ttl: int = 600,
    secret: str = JWT_SECRET,
    **claims: Any,
) -> str:
    tenant_id = tenant.tenant_id if isinstance(tenant, Tenant) else tenant
    return issue_token(
        secret,
        tenant_id=tenant_id,
        perms=perms.split(",") if isinstance(perms, str) else perms,
        subject=claims.pop("sub", "tester"),
        ttl_seconds=ttl,
        **claims,
    )


def auth(tenant: Tenant | UUID, perms: list[str] | str, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(tenant, perms, **kwargs)}"}


def service_env(master_url: str, redis_url: str, **extra: Any) -> dict[str, Any]:
    """Settings values for a service under test (tenant cache off, so changes show at once)."""
    return {
        "DATABASE_URL": master_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": JWT_SECRET,
        "TENANT_CACHE_SECONDS": 0,
        "LOG_FORMAT": "console",
        **extra,
    }


class RunningServer:
    """A uvicorn server on a real 127.0.0.1 socket, in the test session's event loop."""

    def __init__(self, app: FastAPI | Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on")
        )
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> RunningServer:
        self.server.should_exit = False
        self.task = asyncio.create_task(self.server.serve())
        for _ in range(200):
            if self.server.started:
                return self
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.02)
        raise RuntimeError("server did not start")

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task
            self.task = None


@pytest.fixture(scope="session")
async def sweeps_server(master_url: str, redis_url: str) -> AsyncIterator[RunningServer]:
    from eligibility_sweeps.app import create_app
    from eligibility_sweeps.config import Settings

    server = await RunningServer(create_app(Settings(**service_env(master_url, redis_url)))).start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def contracts_server(master_url: str, redis_url: str) -> AsyncIterator[RunningServer]:
    from contract_registry.app import create_app
    from contract_registry.config import Settings

    server = await RunningServer(create_app(Settings(**service_env(master_url, redis_url)))).start()
    yield server
    await server.stop()


@pytest.fixture
async def sweeps(sweeps_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sweeps_server.url, timeout=30) as client:
        yield client


@pytest.fixture
async def contracts(contracts_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=contracts_server.url, timeout=30) as client:
        yield client


async def scalar(session: AsyncSession, sql: str, **params: Any) -> Any:
    return (await session.execute(sa.text(sql), params)).scalar()


__all__ = ["auth", "make_token", "migrations", "scalar", "tenant_session"]


async def run_rcm(
    *args: str, master_url: str, redis_url: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the real ``rcm`` command against the session's master database."""
    full_env = {**os.environ, "DATABASE_URL": master_url, "REDIS_URL": redis_url, **env}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "rcm_kit.cli", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="session")
async def sandbox_server() -> AsyncIterator[RunningServer]:
    """The clearinghouse sandbox on a real socket, one per test session."""
    from tests.sandbox_support import start_sandbox

    server = await start_sandbox()
    yield server
    await server.stop()


@pytest.fixture
async def sandbox(sandbox_server: RunningServer) -> AsyncIterator[Any]:
    """A client of the sandbox, reset to its defaults with no records."""
    from tests.sandbox_support import SandboxClient

    async with SandboxClient(sandbox_server.url) as client:
        await client.reset()
        yield client
