"""Trading-partner admin: CRUD, write-only secrets encrypted at rest, the inbound
credential shown once, unambiguous payer routing, 422s naming fields, audit rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from eligibility_sweeps.trading_partner.repository import verify_inbound_credential
from rcm_kit.tenancy import Tenant
from tests.conftest import RunningServer, TenantFactory, auth, service_env, tenant_session
from tests.eligibility_sweeps.factories import add_payer
from tests.eligibility_sweeps.test_members_api import audit_rows

BASE = "/api/v1/admin/trading-partners"
READ, WRITE = "config.read", "config.update"
SECRETS_KEY = Fernet.generate_key().decode()
PASSWORD = "pw-" + uuid4().hex
TOKEN = "tok-" + uuid4().hex


@pytest.fixture(scope="module")
async def keyed_server(master_url: str, redis_url: str) -> AsyncIterator[RunningServer]:
    """The sweeps API with a SECRETS_KEY, so partners with passwords or tokens can be stored."""
    from eligibility_sweeps.app import create_app
    from eligibility_sweeps.config import Settings

    settings = Settings(**service_env(master_url, redis_url, SECRETS_KEY=SECRETS_KEY))
    server = await RunningServer(create_app(settings)).start()
    yield server
    await server.stop()


@pytest.fixture
async def api(keyed_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=keyed_server.url, timeout=30) as client:
        yield client


@pytest.fixture
async def tenant(make_tenant: TenantFactory) -> Tenant:
    return await make_tenant()


@pytest.fixture
async def payers(tenant: Tenant) -> list[UUID]:
    async with tenant_session(tenant) as session:
        return [await add_payer(session, code) for code in ("P1", "P2", "P3")]


def body(**values: Any) -> dict[str, Any]:
    return {
        "name": "Sandbox clearinghouse",
        "transport": "core-mime",
        "endpoint_url": "https://ch.example.test/core/realtime",
        "sender_id": "RCMSENDER",
        "receiver_id": "CLEARHOUSE",
        **values,
    }


async def create(
    api: httpx.AsyncClient, tenant: Tenant, status: int = 201, **values: Any
) -> dict[str, Any]:
    response = await api.post(BASE, json=body(**values), headers=auth(tenant, WRITE))
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


async def stored(tenant: Tenant, trading_partner_id: str) -> Any:
    async with tenant_session(tenant) as session:
        return (
            await session.execute(
                sa.text("SELECT * FROM eligibility.trading_partner WHERE trading_partner_id = :id"),
                {"id": trading_partner_id},
            )
        ).first()


async def verify(tenant: Tenant, trading_partner_id: str, presented: str) -> bool:
    async with tenant_session(tenant) as session:
        return await verify_inbound_credential(session, UUID(trading_partner_id), presented)


async def test_create_with_defaults_then_read_list_patch_and_delete(
    api: httpx.AsyncClient, tenant: Tenant, payers: list[UUID]
) -> None:
    created = await create(api, tenant, payer_ids=[str(payers[0])])
    partner_id = created["trading_partner_id"]
    assert created["auth"] == {"type": "none"}
    assert created["timeout_seconds"] == 20
    assert created["usage_indicator"] == "P"
    assert created["active"] is True
    assert created["payer_ids"] == [str(payers[0])]
    assert created["payer_limits"] == []
    assert created["max_requests_per_second"] is None
    assert created["has_inbound_credential"] is True

    got = await api.get(f"{BASE}/{partner_id}", headers=auth(tenant, READ))
    assert got.status_code == 200
    assert "inbound_credential" not in got.json()
    assert got.json() == {k: v for k, v in created.items() if k != "inbound_credential"}

    await create(api, tenant, name="Another", payer_ids=[str(payers[1])])
    listed = await api.get(BASE, headers=auth(tenant, READ), params={"limit": 1})
    assert [p["name"] for p in listed.json()["items"]] == ["Another"]
    rest = await api.get(
        BASE, headers=auth(tenant, READ), params={"cursor": listed.json()["next_cursor"]}
    )
    assert [p["name"] for p in rest.json()["items"]] == ["Sandbox clearinghouse"]

    patched = await api.patch(
        f"{BASE}/{partner_id}",
        headers=auth(tenant, WRITE),
        json={
            "payer_ids": [str(payers[0]), str(payers[2])],
            "payer_limits": [{"payer_id": str(payers[2]), "daily_request_cap": 500}],
            "timeout_seconds": 30,
            "max_requests_per_second": 2.5,
            "usage_indicator": "T",
        },
    )
    assert patched.status_code == 200, patched.text
    result = patched.json()
    assert sorted(result["payer_ids"]) == sorted([str(payers[0]), str(payers[2])])
    assert result["payer_limits"] == [
        {"payer_id": str(payers[2]), "max_requests_per_second": None, "daily_request_cap": 500}
    ]
    assert (result["timeout_seconds"], result["max_requests_per_second"]) == (30, 2.5)
    assert result["name"] == "Sandbox clearinghouse"

    # Dropping a payer drops its limit; the payers that stay keep theirs.
    kept = await api.patch(
        f"{BASE}/{partner_id}", headers=auth(tenant, WRITE), json={"payer_ids": [str(payers[2])]}
    )
    assert kept.json()["payer_limits"][0]["daily_request_cap"] == 500

    deleted = await api.delete(f"{BASE}/{partner_id}", headers=auth(tenant, WRITE))
    assert deleted.status_code == 204
    gone = await api.get(f"{BASE}/{partner_id}", headers=auth(tenant, READ))
    assert gone.status_code == 404
    again = await api.delete(f"{BASE}/{partner_id}", headers=auth(tenant, WRITE))
    assert again.status_code == 404


async def test_secrets_are_write_only_and_encrypted_at_rest(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await create(
        api, tenant, auth={"type": "basic", "username": "rcm-user", "password": PASSWORD}
    )
    partner_id = created["trading_partner_id"]
    assert created["auth"] == {"type": "basic", "username": "rcm-user"}
    row = await stored(tenant, partner_id)
    assert PASSWORD not in row.auth_secret_encrypted
    assert Fernet(SECRETS_KEY).decrypt(row.auth_secret_encrypted.encode()).decode() == PASSWORD

    patched = await api.patch(
        f"{BASE}/{partner_id}",
        headers=auth(tenant, WRITE),
        json={"auth": {"type": "bearer", "token": TOKEN}},
    )
    assert patched.json()["auth"] == {"type": "bearer"}
    row = await stored(tenant, partner_id)
    assert row.auth_username is None
    assert Fernet(SECRETS_KEY).decrypt(row.auth_secret_encrypted.encode()).decode() == TOKEN

    texts = [created, patched.text]
    texts.append((await api.get(f"{BASE}/{partner_id}", headers=auth(tenant, READ))).text)
    texts.append((await api.get(BASE, headers=auth(tenant, READ))).text)
    for text in map(str, texts):
        assert PASSWORD not in text
        assert TOKEN not in text

    cleared = await api.patch(
        f"{BASE}/{partner_id}", headers=auth(tenant, WRITE), json={"auth": {"type": "none"}}
    )
    assert cleared.json()["auth"] == {"type": "none"}
    assert (await stored(tenant, partner_id)).auth_secret_encrypted is None


async def test_a_secret_needs_a_secrets_key(sweeps: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await sweeps.post(
        BASE,
        headers=auth(tenant, WRITE),
        json=body(auth={"type": "bearer", "token": TOKEN}),
    )
    assert response.status_code == 409, response.text
    assert "SECRETS_KEY is not configured" in response.json()["detail"]
    assert TOKEN not in response.text


async def test_inbound_credential_is_shown_once_verifies_and_rotates(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await create(api, tenant)
    partner_id, first = created["trading_partner_id"], created["inbound_credential"]
    row = await stored(tenant, partner_id)
    assert first not in row.inbound_credential_hash
    assert await verify(tenant, partner_id, first)
    assert not await verify(tenant, partner_id, first + "x")
    assert not await verify(tenant, str(uuid4()), first)

    rotated = await api.post(f"{BASE}/{partner_id}/inbound-credential", headers=auth(tenant, WRITE))
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["inbound_credential"]
    assert second != first
    assert not await verify(tenant, partner_id, first)
    assert await verify(tenant, partner_id, second)
    read = await api.get(f"{BASE}/{partner_id}", headers=auth(tenant, READ))
    assert second not in read.text
    missing = await api.post(f"{BASE}/{uuid4()}/inbound-credential", headers=auth(tenant, WRITE))
    assert missing.status_code == 404


async def test_a_payer_goes_through_one_active_partner_only(
    api: httpx.AsyncClient, tenant: Tenant, payers: list[UUID]
) -> None:
    first = await create(api, tenant, name="First", payer_ids=[str(payers[0])])
    conflict = await create(
        api, tenant, 409, name="Second", payer_ids=[str(payers[1]), str(payers[0])]
    )
    assert "First" in conflict["detail"]
    assert "P1" in conflict["detail"]
    assert conflict["conflicting_trading_partner_id"] == first["trading_partner_id"]

    # An inactive partner may list the payer, but not be activated while First routes it.
    second = await create(api, tenant, name="Second", payer_ids=[str(payers[0])], active=False)
    url = f"{BASE}/{second['trading_partner_id']}"
    refused = await api.patch(url, headers=auth(tenant, WRITE), json={"active": True})
    assert refused.status_code == 409
    assert first["trading_partner_id"] in refused.json()["detail"]

    await api.patch(
        f"{BASE}/{first['trading_partner_id']}",
        headers=auth(tenant, WRITE),
        json={"active": False},
    )
    allowed = await api.patch(url, headers=auth(tenant, WRITE), json={"active": True})
    assert allowed.status_code == 200, allowed.text

    # Adding a routed payer to an active partner conflicts as well.
    third = await create(api, tenant, name="Third", payer_ids=[str(payers[2])])
    added = await api.patch(
        f"{BASE}/{third['trading_partner_id']}",
        headers=auth(tenant, WRITE),
        json={"payer_ids": [str(payers[2]), str(payers[0])]},
    )
    assert added.status_code == 409
    assert "Second" in added.json()["detail"]


async def test_duplicate_name_conflicts(api: httpx.AsyncClient, tenant: Tenant) -> None:
    first = await create(api, tenant, name="Same")
    duplicate = await create(api, tenant, 409, name="  Same ")
    assert duplicate["existing_trading_partner_id"] == first["trading_partner_id"]
    other = await create(api, tenant, name="Other")
    renamed = await api.patch(
        f"{BASE}/{other['trading_partner_id']}", headers=auth(tenant, WRITE), json={"name": "Same"}
    )
    assert renamed.status_code == 409


async def _locs(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    return {".".join(map(str, e["loc"])) for e in response.json()["errors"]}


async def test_each_bad_field_is_named(
    api: httpx.AsyncClient, tenant: Tenant, payers: list[UUID]
) -> None:
    headers = auth(tenant, WRITE)
    bad = body(
        endpoint_url="ftp://ch.example.test",
        usage_indicator="X",
        transport="smtp",
        timeout_seconds=61,
        sender_id="TOO-LONG-SENDER-ID",
        receiver_id="BAD*ID",
        name="",
        max_requests_per_second=0,
    )
    response = await api.post(BASE, json=bad, headers=headers)
    assert await _locs(response) >= {
        "endpoint_url",
        "usage_indicator",
        "transport",
        "timeout_seconds",
        "sender_id",
        "receiver_id",
        "name",
        "max_requests_per_second",
    }
    errors = {".".join(map(str, e["loc"])): e["msg"] for e in response.json()["errors"]}
    assert "http" in errors["endpoint_url"]
    assert "60" in errors["timeout_seconds"]

    with_creds = await api.post(
        BASE, json=body(endpoint_url="https://u:secret@ch.example.test/"), headers=headers
    )
    assert await _locs(with_creds) == {"endpoint_url"}
    assert "secret" not in with_creds.text

    unknown = await api.post(
        BASE,
        json=body(
            payer_ids=[str(payers[0]), str(uuid4())],
            payer_limits=[
                {"payer_id": str(uuid4()), "daily_request_cap": 5},
                {"payer_id": str(payers[1]), "daily_request_cap": 5},
            ],
        ),
        headers=headers,
    )
    assert await _locs(unknown) == {
        "payer_ids.1",
        "payer_limits.0.payer_id",
        "payer_limits.1.payer_id",
    }

    missing_password = await api.post(
        BASE, json=body(auth={"type": "basic", "username": "u"}), headers=headers
    )
    assert any(loc.startswith("auth") for loc in await _locs(missing_password))

    partner = await create(api, tenant)
    url = f"{BASE}/{partner['trading_partner_id']}"
    nulls = await api.patch(url, json={"name": None, "timeout_seconds": 0}, headers=headers)
    assert await _locs(nulls) == {"name", "timeout_seconds"}
    limit_outside = await api.patch(
        url,
        json={"payer_limits": [{"payer_id": str(payers[0]), "max_requests_per_second": 1}]},
        headers=headers,
    )
    assert await _locs(limit_outside) == {"payer_limits.0.payer_id"}
    assert (await api.patch(f"{BASE}/{uuid4()}", json={}, headers=headers)).status_code == 404


async def test_changes_are_audited_by_field_name(
    api: httpx.AsyncClient, tenant: Tenant, payers: list[UUID]
) -> None:
    created = await create(
        api, tenant, auth={"type": "bearer", "token": TOKEN}, payer_ids=[str(payers[0])]
    )
    partner_id = created["trading_partner_id"]
    headers = auth(tenant, WRITE)
    await api.patch(f"{BASE}/{partner_id}", headers=headers, json={"timeout_seconds": 5})
    await api.patch(f"{BASE}/{partner_id}", headers=headers, json={"timeout_seconds": 5})
    await api.post(f"{BASE}/{partner_id}/inbound-credential", headers=headers)
    await api.delete(f"{BASE}/{partner_id}", headers=headers)

    rows = await audit_rows(tenant, "trading_partner")
    assert [(r.action, r.entity_id) for r in rows] == [
        ("CREATE", partner_id),
        ("UPDATE", partner_id),
        ("UPDATE", partner_id),
        ("DELETE", partner_id),
    ]
    assert "auth" in rows[0].detail["fields"]
    assert rows[1].detail == {"fields": ["timeout_seconds"]}
    assert rows[2].detail == {"fields": ["inbound_credential"]}
    assert all(r.actor == "tester" and r.request_id for r in rows)
    assert TOKEN not in str([r.detail for r in rows])


def test_secrets_key_must_be_fernet_keys(master_url: str, redis_url: str) -> None:
    from pydantic import ValidationError

    from eligibility_sweeps.config import Settings

    with pytest.raises(ValidationError, match="Fernet"):
        Settings(**service_env(master_url, redis_url, SECRETS_KEY="not-a-key"))
    rotated = f"{Fernet.generate_key().decode()},{SECRETS_KEY}"
    assert Settings(**service_env(master_url, redis_url, SECRETS_KEY=rotated)).SECRETS_KEY
