from __future__ import annotations

import httpx

from rcm_kit.tenancy import Tenant
from tests.conftest import auth


async def test_payers_list_answers_for_a_tenant(
    contracts: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    response = await contracts.get("/api/v1/payers", headers=auth(tenant_a, "config.read"))
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_cursor": None}
    assert response.headers["x-request-id"]
