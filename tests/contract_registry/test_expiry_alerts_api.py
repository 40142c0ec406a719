from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import sqlalchemy as sa

from rcm_kit.tenancy import Tenant
from tests.conftest import TenantFactory, auth, tenant_session
from tests.contract_registry.factories import add_billing_entity, add_payer
from tests.contract_registry.test_contracts_api import audit_rows, walk

READ = "config.read"
WRITE = "config.update"
ALERTS = "/api/v1/admin/contracts/expiry-alerts"


@dataclass
class Scope:
    tenant: Tenant
    payer_id: UUID
    entity_id: UUID


@pytest.fixture
async def scope(make_tenant: TenantFactory) -> Scope:
    tenant = await make_tenant()
    async with tenant_session(tenant) as session:
        payer_id = await add_payer(session, "60054", "Aetna")
        entity_id = await add_billing_entity(session, "LKS-HOSP", "Lakeshore Hospital")
    return Scope(tenant, payer_id, entity_id)


async def create(client: httpx.AsyncClient, scope: Scope, **body: Any) -> httpx.Response:
    payload = {"lead_days": 30, "recipients": ["ops@example.org"], **body}
    return await client.post(ALERTS, json=payload, headers=auth(scope.tenant, WRITE))


async def errors(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    found: list[dict[str, Any]] = response.json()["errors"]
    return found


async def test_create_with_defaults_then_read_it(
    contracts: httpx.AsyncClient, scope: Scope
) -> None:
    response = await create(
        contracts, scope, recipients=[" Ops@Example.ORG ", "ops@example.org", "cfo@example.com"]
    )

    assert response.status_code == 201, response.text
    alert = response.json()
    assert alert | {"alert_id": None, "created_at": None, "updated_at": None} == {
        "alert_id": None,
        "payer_id": None,
        "payer_name": None,
        "billing_entity_id": None,
        "billing_entity_name": None,
        "lead_days": 30,
        "recipients": ["Ops@example.org", "cfo@example.com"],
        "subject": "Contracts expiring within 30 days",
        "active": True,
        "last_fired_at": None,
        "last_status": None,
        "last_error": None,
        "created_at": None,
        "updated_at": None,
    }
    assert alert["created_at"].endswith("Z")
    got = await contracts.get(f"{ALERTS}/{alert['alert_id']}", headers=auth(scope.tenant, READ))
    assert got.status_code == 200
    assert got.json() == alert


async def test_each_bad_field_is_named_with_its_rule(
    contracts: httpx.AsyncClient, scope: Scope
) -> None:
    assert await errors(await create(contracts, scope, lead_days=45)) == [
        {"loc": ["lead_days"], "msg": "must be one of 30, 60, 90"}
    ]
    assert await errors(await create(contracts, scope, recipients=[])) == [
        {"loc": ["recipients"], "msg": "must list 1 to 10 distinct e-mail addresses, not 0"}
    ]
    eleven = [f"person{n}@example.org" for n in range(11)]
    assert await errors(await create(contracts, scope, recipients=eleven)) == [
        {"loc": ["recipients"], "msg": "must list 1 to 10 distinct e-mail addresses, not 11"}
    ]
    bad = await errors(
        await create(contracts, scope, recipients=["ok@example.org", "ok2@example.org", "nope"])
    )
    assert [e["loc"] for e in bad] == [["recipients", 2]]
    assert bad[0]["msg"].startswith("is not a valid e-mail address")
    assert await errors(await create(contracts, scope, subject="x" * 201)) == [
        {"loc": ["subject"], "msg": "String should have at most 200 characters"}
    ]
    assert (await create(contracts, scope, subject="x" * 200)).status_code == 201
    assert (await errors(await create(contracts, scope, subject="Hi\r\nBcc: x@example.org")))[0][
        "loc"
    ] == ["subject"]
    unknown = await errors(
        await create(contracts, scope, payer_id=str(uuid4()), billing_entity_id=str(uuid4()))
    )
    assert unknown == [
        {"loc": ["payer_id"], "msg": "no payer with this id in your organization"},
        {
            "loc": ["billing_entity_id"],
            "msg": "no billing entity with this id in your organization",
        },
    ]
    ten = [f"person{n}@example.org" for n in range(10)]
    assert (await create(contracts, scope, lead_days=60, recipients=ten)).status_code == 201


async def test_a_second_alert_for_the_same_scope_conflicts_nulls_included(
    contracts: httpx.AsyncClient, scope: Scope
) -> None:
    everyone = (await create(contracts, scope)).json()
    one_payer = (await create(contracts, scope, payer_id=str(scope.payer_id))).json()

    for body, holder in (
        ({}, everyone),
        ({"payer_id": None, "billing_entity_id": None}, everyone),
        ({"payer_id": str(scope.payer_id)}, one_payer),
    ):
        response = await create(contracts, scope, recipients=["other@example.org"], **body)
        assert response.status_code == 409, body
        assert response.json()["existing_alert_id"] == holder["alert_id"]
        assert holder["alert_id"] in response.json()["detail"]

    bodies: list[dict[str, Any]] = [
        {"lead_days": 60},
        {"lead_days": 90},
        {"billing_entity_id": str(scope.entity_id)},
        {"payer_id": str(scope.payer_id), "billing_entity_id": str(scope.entity_id)},
    ]
    for body in bodies:
        assert (await create(contracts, scope, **body)).status_code == 201, body
    assert len(await walk(contracts, scope.tenant, ALERTS)) == 6


async def test_unchecking_active_pauses_without_losing_the_scope(
    contracts: httpx.AsyncClient, scope: Scope
) -> None:
    alert = (
        await create(
            contracts,
            scope,
            payer_id=str(scope.payer_id),
            billing_entity_id=str(scope.entity_id),
            lead_days=60,
            recipients=["a@example.org", "b@example.org"],
        )
    ).json()
    url = f"{ALERTS}/{alert['alert_id']}"

    paused = await contracts.patch(url, json={"active": False}, headers=auth(scope.tenant, WRITE))

    assert paused.status_code == 200, paused.text
    kept = ("payer_id", "billing_entity_id", "lead_days", "recipients", "subject")
    assert {k: paused.json()[k] for k in kept} == {k: alert[k] for k in kept}
    assert paused.json()["active"] is False
    listed = await walk(contracts, scope.tenant, ALERTS)
    assert [(a["alert_id"], a["active"]) for a in listed] == [(alert["alert_id"], False)]
    resumed = await contracts.patch(url, json={"active": True}, headers=auth(scope.tenant, WRITE))
    assert resumed.json()["active"] is True


async def test_patch_null_widens_the_scope_and_a_default_subject_follows_lead_days(
    contracts: httpx.AsyncClient, scope: Scope
) -> None:
    alert = (
        await create(
            contracts, scope, payer_id=str(scope.payer_id), billing_entity_id=str(scope.entity_id)
        )
    ).json()
    custom = (await create(contracts, scope, lead_days=90, subject="Renewals due")).json()
    headers = auth(scope.tenant, WRITE)
    url = f"{ALERTS}/{alert['alert_id']}"

    widened = await contracts.patch(url, json={"payer_id": None}, headers=headers)
    assert widened.status_code == 200, widened.text
    assert (widened.json()["payer_id"], widened.json()["billing_entity_id"]) == (
        None,
        str(scope.entity_id),
    )
    longer = await contracts.patch(url, json={"lead_days": 60}, headers=headers)
    assert longer.json()["subject"] == "Contracts expiring within 60 days"
    still_custom = await contracts.patch(
        f"{ALERTS}/{custom['alert_id']}", json={"lead_days": 30}, headers=headers
    )
    assert still_custom.json()["subject"] == "Renewals due"
    reset = await contracts.patch(
        f"{ALERTS}/{custom['alert_id']}", json={"subject": None}, headers=headers
    )
    assert reset.json()["subject"] == "Contracts expiring within 30 days"

    all_scope = await contracts.patch(url, json={"billing_entity_id": None}, headers=headers)
    assert all_scope.status_code == 200
    clash = await contracts.patch(
        f"{ALERTS}/{custom['alert_id']}", json={"lead_days": 60}, headers=headers
    )
    assert clash.status_code == 409
    assert clash.json()["existing_alert_id"] == alert["alert_id"]
    for body in ({"lead_days": None}, {"recipients": None}, {"active": None}, {"lead_days": 45}):
        assert (await errors(await contracts.patch(url, json=body, headers=headers)))[0]["loc"] == [
            next(iter(body))
        ]
    missing = await contracts.patch(f"{ALERTS}/{uuid4()}", json={"active": False}, headers=headers)
    assert missing.status_code == 404


async def test_delete_then_it_is_gone(contracts: httpx.AsyncClient, scope: Scope) -> None:
    alert = (await create(contracts, scope)).json()
    url = f"{ALERTS}/{alert['alert_id']}"
    headers = auth(scope.tenant, WRITE)

    deleted = await contracts.delete(url, headers=headers)

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert (await contracts.get(url, headers=auth(scope.tenant, READ))).status_code == 404
    assert (await contracts.delete(url, headers=headers)).status_code == 404
    assert (await create(contracts, scope)).status_code == 201  # the scope is free again


async def test_alert_changes_are_audited(contracts: httpx.AsyncClient, scope: Scope) -> None:
    alert_id = (await create(contracts, scope)).json()["alert_id"]
    headers = auth(scope.tenant, WRITE, sub="ops.lead")
    url = f"{ALERTS}/{alert_id}"
    await contracts.patch(
        url, json={"active": False, "recipients": ["x@example.org"]}, headers=headers
    )
    await contracts.patch(url, json={"active": False}, headers=headers)  # no change: no row
    await contracts.delete(url, headers=headers)

    rows = await audit_rows(scope.tenant, "contract_expiry_alert")

    assert [(r.action, r.entity_id) for r in rows] == [
        ("CREATE", alert_id),
        ("UPDATE", alert_id),
        ("DELETE", alert_id),
    ]
    assert rows[1].actor == "ops.lead"
    assert rows[1].detail == {"fields": ["active", "recipients"]}


async def test_alerts_list_oldest_first_across_pages(
    contracts: httpx.AsyncClient, scope: Scope
) -> None:
    made = []
    for lead_days in (30, 60, 90):
        for payer_id in (None, str(scope.payer_id)):
            response = await create(contracts, scope, lead_days=lead_days, payer_id=payer_id)
            made.append(response.json()["alert_id"])

    listed = await walk(contracts, scope.tenant, ALERTS, limit=4)

    assert [a["alert_id"] for a in listed] == made
    async with tenant_session(scope.tenant) as session:
        count = await session.scalar(sa.text("SELECT count(*) FROM billing.contract_expiry_alert"))
    assert count == 6
