from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

import httpx
import pytest
import sqlalchemy as sa

from rcm_kit.tenancy import Tenant
from tests.conftest import TenantFactory, auth, tenant_session
from tests.eligibility_sweeps.factories import add_member, add_payer, add_policy

READ = "eligibility.read"


@pytest.fixture
async def tenant(make_tenant: TenantFactory) -> Tenant:
    return await make_tenant()


async def walk(client: httpx.AsyncClient, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    """Every item of the member list, page by page."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/v1/members", params=query, headers=auth(tenant, READ))
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def audit_rows(tenant: Tenant, entity_type: str) -> list[Any]:
    async with tenant_session(tenant) as session:
        result = await session.execute(
            sa.text(
                "SELECT actor, action, entity_id, request_id, detail"
                " FROM eligibility.audit_event WHERE entity_type = :type ORDER BY occurred_at"
            ),
            {"type": entity_type},
        )
        return list(result.all())


async def test_paging_through_equal_names_never_repeats_or_skips(
    sweeps: httpx.AsyncClient, tenant: Tenant
) -> None:
    async with tenant_session(tenant) as session:
        for number in range(60):
            await add_member(
                session,
                f"N{number}",
                last_name="Nguyen",
                first_name=("An", "Binh", "Chi")[number % 3],
            )
        for number in range(7):
            await add_member(session, f"A{number}", last_name="Abbott")
        expected = list(
            (
                await session.execute(
                    sa.text(
                        "SELECT member_id FROM member.member"
                        " ORDER BY last_name, first_name, member_id"
                    )
                )
            ).scalars()
        )

    items = await walk(sweeps, tenant, limit=7)

    assert [UUID(item["member_id"]) for item in items] == expected
    assert set(items[0]) == {"member_id", "external_id", "first_name", "last_name", "date_of_birth"}
    nguyens = await walk(sweeps, tenant, q="nGUy", limit=4)
    assert [item["member_id"] for item in nguyens] == [str(i) for i in expected[7:]]


async def test_search_matches_every_word_in_names_or_external_id(
    sweeps: httpx.AsyncClient, tenant: Tenant
) -> None:
    async with tenant_session(tenant) as session:
        await add_member(session, "MRN-100", first_name="Ana", last_name="Leeds")
        await add_member(session, "MRN-200", first_name="Ana", last_name="Smith")
        await add_member(session, "X_1%", first_name="Lee", last_name="Park")

    async def names(**params: Any) -> list[str]:
        return [item["external_id"] for item in await walk(sweeps, tenant, **params)]

    assert await names(q="ana  LEE") == ["MRN-100"]
    assert await names(q="lee") == ["MRN-100", "X_1%"]
    assert await names(q="mrn-") == ["MRN-100", "MRN-200"]
    assert await names(q="_1%") == ["X_1%"]  # LIKE wildcards are matched literally
    assert await names(external_id="MRN-200") == ["MRN-200"]
    assert await names(external_id="MRN-2") == []


async def test_a_cursor_used_with_another_search_is_refused(
    sweeps: httpx.AsyncClient, tenant: Tenant
) -> None:
    async with tenant_session(tenant) as session:
        for number in range(3):
            await add_member(session, f"M{number}")
    first = await sweeps.get(
        "/api/v1/members", params={"q": "lee", "limit": 1}, headers=auth(tenant, READ)
    )
    cursor = first.json()["next_cursor"]

    response = await sweeps.get(
        "/api/v1/members", params={"q": "ana", "cursor": cursor}, headers=auth(tenant, READ)
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"] == ["query", "cursor"]


async def test_member_detail_lists_coverage_with_payers(
    sweeps: httpx.AsyncClient, tenant: Tenant
) -> None:
    async with tenant_session(tenant) as session:
        member_id = await add_member(session, "MRN-1")
        aetna = await add_payer(session, "60054", "Aetna")
        uhc = await add_payer(session, "87726", "UnitedHealthcare")
        await add_policy(session, member_id, uhc, subscriber_id="U2", priority=2)
        await add_policy(
            session,
            member_id,
            aetna,
            subscriber_id="W1",
            effective_to=date(2026, 12, 31),
            relationship="child",
            subscriber_first_name="Mia",
            subscriber_last_name="Lee",
            subscriber_date_of_birth=date(1960, 1, 2),
        )

    response = await sweeps.get(f"/api/v1/members/{member_id}", headers=auth(tenant, READ))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["member_id"] == str(member_id)
    assert body["date_of_birth"] == "1980-05-17"
    primary, secondary = body["coverage_policies"]
    assert primary | {"coverage_policy_id": None} == {
        "coverage_policy_id": None,
        "payer_id": str(aetna),
        "payer_code": "60054",
        "payer_name": "Aetna",
        "subscriber_id": "W1",
        "effective_from": "2025-01-01",
        "effective_to": "2026-12-31",
        "priority": 1,
        "relationship": "child",
        "subscriber_first_name": "Mia",
        "subscriber_last_name": "Lee",
        "subscriber_date_of_birth": "1960-01-02",
    }
    assert (secondary["payer_code"], secondary["priority"]) == ("87726", 2)


async def test_another_tenants_member_is_not_found(
    sweeps: httpx.AsyncClient, tenant: Tenant, make_tenant: TenantFactory
) -> None:
    other = await make_tenant()
    async with tenant_session(other) as session:
        member_id = await add_member(session, "MRN-1")

    response = await sweeps.get(f"/api/v1/members/{member_id}", headers=auth(tenant, READ))

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404
    assert await audit_rows(tenant, "member") == []


async def test_reading_a_member_is_audited(sweeps: httpx.AsyncClient, tenant: Tenant) -> None:
    async with tenant_session(tenant) as session:
        member_id = await add_member(session, "MRN-1")

    response = await sweeps.get(
        f"/api/v1/members/{member_id}", headers=auth(tenant, READ, sub="nurse.joy")
    )

    assert response.status_code == 200
    [row] = await audit_rows(tenant, "member")
    assert (row.actor, row.action, row.entity_id) == ("nurse.joy", "READ", str(member_id))
    assert row.request_id == response.headers["x-request-id"]


async def test_searching_members_is_audited_without_the_search_terms(
    sweeps: httpx.AsyncClient, tenant: Tenant
) -> None:
    async with tenant_session(tenant) as session:
        await add_member(session, "MRN-1", last_name="Quintero")

    await walk(sweeps, tenant, q="quinter")

    [row] = await audit_rows(tenant, "member_list")
    assert row.detail == {"filters": ["q"], "returned": 1}
    assert "quinter" not in str(row).lower()


async def test_members_need_eligibility_read(sweeps: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await sweeps.get("/api/v1/members", headers=auth(tenant, "config.read"))

    assert response.status_code == 403
