"""Keyset paging: equal sort values never repeat or skip a row; cursors are bound to filters."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from rcm_kit.tenancy import Tenant
from rcm_reference.models import payer
from tests.conftest import TenantFactory, auth, tenant_session


async def _walk(client: httpx.AsyncClient, url: str, headers: dict[str, str], limit: int) -> list:
    rows, cursor, pages = [], None, 0
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        rows.extend(body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return rows
        assert pages < 100


async def test_pages_with_equal_names_never_repeat_or_skip(
    contracts: httpx.AsyncClient, make_tenant: TenantFactory
) -> None:
    tenant: Tenant = await make_tenant()
    async with tenant_session(tenant) as session:
        await session.execute(
            sa.insert(payer),
            [
                {"payer_code": f"P{i:03}", "name": ["Aetna", "Cigna", "Humana"][i % 3]}
                for i in range(37)
            ],
        )
    headers = auth(tenant, "config.read")
    for limit in (1, 4, 7, 50):
        rows = await _walk(contracts, "/api/v1/payers", headers, limit)
        codes = [row["payer_code"] for row in rows]
        assert len(codes) == 37, limit
        assert len(set(codes)) == 37, limit
        keys = [(row["name"], row["payer_id"]) for row in rows]
        assert keys == sorted(keys), "stated order: name, then id"


async def test_cursor_reused_with_other_filters_is_422(
    contracts: httpx.AsyncClient, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant()
    async with tenant_session(tenant) as session:
        await session.execute(
            sa.insert(payer), [{"payer_code": f"C{i}", "name": f"Payer {i}"} for i in range(5)]
        )
    headers = auth(tenant, "config.read")
    first = await contracts.get("/api/v1/payers", params={"limit": 2}, headers=headers)
    cursor = first.json()["next_cursor"]
    assert cursor
    same = await contracts.get(
        "/api/v1/payers", params={"limit": 2, "cursor": cursor}, headers=headers
    )
    assert same.status_code == 200
    other = await contracts.get(
        "/api/v1/payers", params={"limit": 2, "cursor": cursor, "active": "true"}, headers=headers
    )
    assert other.status_code == 422
    assert other.json()["errors"][0]["loc"] == ["query", "cursor"]
    garbage = await contracts.get(
        "/api/v1/payers", params={"cursor": "not-a-cursor"}, headers=headers
    )
    assert garbage.status_code == 422


async def test_limit_outside_1_to_500_is_422(
    contracts: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    headers = auth(tenant_a, "config.read")
    for bad in (0, 501, "x"):
        response = await contracts.get("/api/v1/payers", params={"limit": bad}, headers=headers)
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["query", "limit"]
