"""The auth matrix over every protected route of both services: 401s and 403s as API.md says."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from rcm_kit.auth import ALL_PERMISSIONS
from rcm_kit.tenancy import Tenant
from tests.conftest import RunningServer, TenantFactory, make_token, service_env
from tests.kit.routes import (
    ProtectedRoute,
    credential_routes,
    protected_routes,
    unprotected_api_routes,
)

ISSUER = "https://idp.example.test/"
AUDIENCE = "rcm-api"


def _routes(server: RunningServer) -> list[ProtectedRoute]:
    return list(protected_routes(server.server.config.app))


@pytest.fixture(scope="module")
async def suspended_tenant(make_tenant: TenantFactory) -> Tenant:

    tenant = await make_tenant("suspended")
    return tenant


@pytest.fixture(scope="module")
async def suspend(suspended_tenant: Tenant, master_engine: Any) -> Tenant:
    from rcm_kit.provision import set_status
    from rcm_kit.tenancy import TenantStatus

    return await set_status(master_engine, suspended_tenant.slug, TenantStatus.SUSPENDED)


async def _call(server: RunningServer, route: ProtectedRoute, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        return await client.request(route.method, route.url(), headers=headers, json={})


def _assert_problem(response: httpx.Response, status: int, route: ProtectedRoute) -> None:
    assert response.status_code == status, f"{route}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith("application/problem+json"), str(route)
    assert response.json()["status"] == status


def test_every_api_route_checks_permissions(
    sweeps_server: RunningServer, contracts_server: RunningServer
) -> None:
    for server in (sweeps_server, contracts_server):
        assert unprotected_api_routes(server.server.config.app) == []
        assert _routes(server), "a service exposes no protected route"
    # The one route a partner calls with its inbound credential instead of a JWT; its
    # own tests are in tests/eligibility_sweeps/test_inbound.py.
    assert credential_routes(sweeps_server.server.config.app) == [
        "['POST'] /api/v1/eligibility/inbound/{trading_partner_id}"
    ]
    assert credential_routes(contracts_server.server.config.app) == []


@pytest.mark.parametrize("service", ["sweeps", "contracts"])
async def test_auth_matrix(
    service: str,
    sweeps_server: RunningServer,
    contracts_server: RunningServer,
    tenant_a: Tenant,
    suspend: Tenant,
) -> None:
    server = {"sweeps": sweeps_server, "contracts": contracts_server}[service]
    for route in _routes(server):
        allowed = list(route.permissions)
        others = [p for p in ALL_PERMISSIONS if p not in allowed]
        cases: list[tuple[str, str | None, int]] = [
            ("no token", None, 401),
            ("garbage token", "not-a-jwt", 401),
            ("bad signature", make_token(tenant_a, allowed, secret="x" * 40), 401),
            ("expired", make_token(tenant_a, allowed, ttl=-120), 401),
            ("unknown tenant", make_token(uuid4(), allowed), 403),
            ("suspended tenant", make_token(suspend, allowed), 403),
            ("missing permission", make_token(tenant_a, others), 403),
        ]
        for label, token, status in cases:
            response = await _call(server, route, token)
            assert response.status_code == status, f"{route} {label}: {response.text}"
            _assert_problem(response, status, route)
            if status == 401:
                assert response.headers.get("www-authenticate") == "Bearer"
        for permission in allowed:
            response = await _call(server, route, make_token(tenant_a, [permission]))
            assert response.status_code not in (401, 403), f"{route} with {permission}"


# Issuer and audience: a service configured for a real identity provider.


def _jwks_app(keys: list[dict[str, Any]]) -> Starlette:
    async def jwks(_: Any) -> JSONResponse:
        return JSONResponse({"keys": keys})

    return Starlette(routes=[Route("/.well-known/jwks.json", jwks)])


@pytest.fixture(scope="module")
def signing_keys() -> dict[str, Any]:
    return {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec": ec.generate_private_key(ec.SECP256R1()),
    }


@pytest.fixture(scope="module")
async def idp_server(
    master_url: str, redis_url: str, signing_keys: dict[str, Any]
) -> AsyncIterator[RunningServer]:
    """The contracts service verifying RS256/ES256 tokens from a JWKS endpoint, with iss/aud."""
    from contract_registry.app import create_app
    from contract_registry.config import Settings

    keys = []
    for kid, alg in (("rsa", "RS256"), ("ec", "ES256")):
        public = signing_keys[kid].public_key()
        jwk = json.loads(
            (jwt.algorithms.RSAAlgorithm if kid == "rsa" else jwt.algorithms.ECAlgorithm).to_jwk(
                public
            )
        )
        keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
    jwks = await RunningServer(_jwks_app(keys)).start()
    settings = Settings(
        **service_env(
            master_url,
            redis_url,
            JWT_SECRET=None,
            JWT_JWKS_URL=f"{jwks.url}/.well-known/jwks.json",
            JWT_ISSUER=ISSUER,
            JWT_AUDIENCE=AUDIENCE,
        )
    )
    server = await RunningServer(create_app(settings)).start()
    yield server
    await server.stop()
    await jwks.stop()


def _idp_token(key: Any, kid: str, alg: str, tenant: Tenant, **overrides: Any) -> str:
    claims = {
        "sub": "user-1",
        "tenant_id": str(tenant.tenant_id),
        "perms": ["config.read"],
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": int(time.time()) + 300,
        **overrides,
    }
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


@pytest.mark.parametrize(("kid", "alg"), [("rsa", "RS256"), ("ec", "ES256")])
async def test_tokens_from_a_jwks_identity_provider(
    idp_server: RunningServer, signing_keys: dict[str, Any], tenant_a: Tenant, kid: str, alg: str
) -> None:
    key = signing_keys[kid]
    async with httpx.AsyncClient(base_url=idp_server.url) as client:

        async def get(token: str) -> httpx.Response:
            return await client.get("/api/v1/payers", headers={"Authorization": f"Bearer {token}"})

        assert (await get(_idp_token(key, kid, alg, tenant_a))).status_code == 200
        wrong_audience = await get(_idp_token(key, kid, alg, tenant_a, aud="someone-else"))
        assert wrong_audience.status_code == 401
        assert "audience" in wrong_audience.json()["detail"]
        wrong_issuer = await get(_idp_token(key, kid, alg, tenant_a, iss="https://evil.test/"))
        assert wrong_issuer.status_code == 401
        other_key = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if kid == "rsa"
            else ec.generate_private_key(ec.SECP256R1())
        )
        assert (await get(_idp_token(other_key, kid, alg, tenant_a))).status_code == 401
        unknown_kid = await get(_idp_token(key, "nope", alg, tenant_a))
        assert unknown_kid.status_code == 401
        # A shared-secret token is refused where no JWT_SECRET is configured.
        assert (await get(make_token(tenant_a, "config.read"))).status_code == 401
