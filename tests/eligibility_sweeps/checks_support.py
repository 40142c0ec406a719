"""What the eligibility-check tests share: the sandbox, a keyed sweeps API, and a tenant
whose payer is routed through a trading partner pointing at the sandbox.

Use from a test module::

    from tests.eligibility_sweeps.checks_support import *  # noqa: F403 (fixtures)

The sandbox and the API run once per module on real sockets; each test gets a fresh
tenant (``world``) so limits, breakers and control numbers never leak between tests.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from rcm_kit.tenancy import Tenant
from rcm_reference.models import billing_entity
from tests.conftest import RunningServer, TenantFactory, auth, service_env, tenant_session
from tests.eligibility_sweeps.factories import add_member, add_payer, add_policy
from tests.sandbox_support import SandboxClient

SECRETS_KEY = Fernet.generate_key().decode()
PASSWORD = "pw-" + uuid4().hex
VALIDATE = Path(__file__).resolve().parents[2].parent / "shared" / "x12" / "validate"
NPI = "1234567893"
EIN = "98-7728123"
CHECKS = "/api/v1/eligibility/checks"
PARTNERS = "/api/v1/admin/trading-partners"
READ, WRITE, CONFIG = "eligibility.read", "eligibility.update", "config.update"
BREAKER_COOLDOWN = 0.5


@pytest.fixture(scope="module")
async def checks_server(master_url: str, redis_url: str) -> AsyncIterator[RunningServer]:
    """The sweeps API with a SECRETS_KEY and a short breaker cooldown."""
    from eligibility_sweeps.app import create_app
    from eligibility_sweeps.config import Settings

    settings = Settings(
        **service_env(
            master_url,
            redis_url,
            SECRETS_KEY=SECRETS_KEY,
            PARTNER_BREAKER_COOLDOWN_SECONDS=BREAKER_COOLDOWN,
            PARTNER_RATE_WAIT_SECONDS=10,
        )
    )
    server = await RunningServer(create_app(settings)).start()
    yield server
    await server.stop()


@pytest.fixture
async def api(checks_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=checks_server.url, timeout=30) as client:
        yield client


@dataclass
class World:
    """A tenant with one payer routed through a partner at the sandbox."""

    tenant: Tenant
    api: httpx.AsyncClient
    sandbox: SandboxClient
    payer_id: UUID
    payer_code: str
    partner: dict[str, Any] = field(default_factory=dict)

    @property
    def partner_id(self) -> str:
        return str(self.partner["trading_partner_id"])

    @property
    def partner_name(self) -> str:
        return str(self.partner["name"])

    async def add_partner(self, transport: str = "x12-http", **values: Any) -> dict[str, Any]:
        path = "/core" if transport == "core-mime" else "/x12"
        body = {
            "name": f"Sandbox {transport} {uuid4().hex[:6]}",
            "transport": transport,
            "endpoint_url": f"{self.sandbox.base_url}{path}",
            "auth": {"type": "basic", "username": "provider", "password": PASSWORD},
            "sender_id": "RCMSENDER",
            "receiver_id": "SANDBOXCH",
            "usage_indicator": "T",
            "payer_ids": [str(self.payer_id)],
            **values,
        }
        response = await self.api.post(PARTNERS, json=body, headers=auth(self.tenant, CONFIG))
        assert response.status_code == 201, response.text
        self.partner = response.json()
        return self.partner

    async def patch_partner(self, **values: Any) -> dict[str, Any]:
        response = await self.api.patch(
            f"{PARTNERS}/{self.partner_id}", json=values, headers=auth(self.tenant, CONFIG)
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def member(
        self, subscriber_id: str = "SBX-ACTIVE", *, external_id: str | None = None, **policy: Any
    ) -> UUID:
        """A member with one policy of the world's payer under ``subscriber_id``."""
        names = {k: policy.pop(k) for k in ("first_name", "last_name") if k in policy}
        async with tenant_session(self.tenant) as session:
            member_id = await add_member(session, external_id or uuid4().hex[:12], **names)
            await add_policy(
                session, member_id, self.payer_id, subscriber_id=subscriber_id, **policy
            )
        return member_id

    async def check(
        self, member_id: UUID, *, service_date: date | None = None, **extra: Any
    ) -> httpx.Response:
        headers = {**auth(self.tenant, WRITE), **extra.pop("headers", {})}
        body = {
            "member_id": str(member_id),
            "service_date": (service_date or date.today() + timedelta(days=3)).isoformat(),
            **extra,
        }
        return await self.api.post(CHECKS, json=body, headers=headers)

    async def checked(self, subscriber_id: str, status: int | None = None) -> dict[str, Any]:
        """Run a check for a new member under ``subscriber_id``; the check."""
        response = await self.check(await self.member(subscriber_id))
        if status is not None:
            assert response.status_code == status, response.text
        assert response.status_code in (201, 202), response.text
        result: dict[str, Any] = response.json()
        return result

    async def get(self, check_id: str, *, x12: bool = False) -> dict[str, Any]:
        params = {"include": "x12"} if x12 else {}
        response = await self.api.get(
            f"{CHECKS}/{check_id}", params=params, headers=auth(self.tenant, READ)
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


async def make_world(
    make_tenant: TenantFactory, api: httpx.AsyncClient, sandbox: SandboxClient
) -> World:
    tenant = await make_tenant()
    code = f"SBX{uuid4().hex[:6].upper()}"
    async with tenant_session(tenant) as session:
        payer_id = await add_payer(session, code, "Sandbox Health Plan")
        await session.execute(
            sa.insert(billing_entity).values(
                billing_entity_code="BE1", name="Bone and Joint Clinic", npi=NPI, tax_id=EIN
            )
        )
    return World(tenant, api, sandbox, payer_id, code)


@pytest.fixture
async def world(
    make_tenant: TenantFactory, api: httpx.AsyncClient, sandbox: SandboxClient
) -> World:
    """A fresh tenant whose payer goes through an x12-http partner at the sandbox."""
    made = await make_world(make_tenant, api, sandbox)
    await made.add_partner()
    return made


def assert_valid_270(x12: str, tmp_path: Path) -> None:
    """The 270 passes ``../shared/x12/validate`` (pyx12 with the 005010X279A1 map)."""
    path = tmp_path / f"{uuid4().hex}.x12"
    path.write_text(x12)
    result = subprocess.run(
        [sys.executable, str(VALIDATE), str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{x12}\n{result.stdout}\n{result.stderr}"


__all__ = [
    "CHECKS",
    "PARTNERS",
    "PASSWORD",
    "READ",
    "WRITE",
    "World",
    "api",
    "assert_valid_270",
    "checks_server",
    "make_world",
    "world",
]
