from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import sqlalchemy as sa

from contract_registry.contract.repository import expiring_contracts
from rcm_kit.clock import SystemClock, today_in
from rcm_kit.tenancy import Tenant
from tests.conftest import TenantFactory, auth, tenant_session
from tests.contract_registry.factories import (
    add_billing_entity,
    add_contract,
    add_fee_schedule,
    add_payer,
)

READ = "config.read"
WRITE = "config.update"
LIST = "/api/v1/admin/contracts"
SUMMARY = "/api/v1/admin/contracts/summary"


@dataclass
class World:
    tenant: Tenant
    today: date
    payer_id: UUID
    other_payer_id: UUID
    entity_id: UUID
    other_entity_id: UUID

    def day(self, offset: int | None) -> date | None:
        return None if offset is None else self.today + timedelta(days=offset)


async def make_world(make_tenant: TenantFactory, timezone: str = "UTC") -> World:
    tenant = await make_tenant(timezone=timezone)
    async with tenant_session(tenant) as session:
        payer_id = await add_payer(session, "60054", "Aetna")
        other_payer_id = await add_payer(session, "87726", "UnitedHealthcare")
        entity_id = await add_billing_entity(session, "LKS-PHYS", "Lakeshore Physician Group")
        other_entity_id = await add_billing_entity(session, "LKS-HOSP", "Lakeshore Hospital")
    return World(
        tenant,
        today_in(SystemClock(), timezone),
        payer_id,
        other_payer_id,
        entity_id,
        other_entity_id,
    )


@pytest.fixture
async def world(make_tenant: TenantFactory) -> World:
    return await make_world(make_tenant)


async def walk(
    client: httpx.AsyncClient, tenant: Tenant, path: str = LIST, **params: Any
) -> list[dict[str, Any]]:
    """Every item of a list, page by page."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, params=query, headers=auth(tenant, READ))
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def summary(client: httpx.AsyncClient, tenant: Tenant, **params: Any) -> dict[str, Any]:
    response = await client.get(SUMMARY, params=params, headers=auth(tenant, READ))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def audit_rows(tenant: Tenant, entity_type: str) -> list[Any]:
    async with tenant_session(tenant) as session:
        result = await session.execute(
            sa.text(
                "SELECT actor, action, entity_id, detail FROM billing.audit_event"
                " WHERE entity_type = :type ORDER BY occurred_at"
            ),
            {"type": entity_type},
        )
        return list(result.all())


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["contract_id"] for item in items]


async def test_the_banner_equals_the_list_for_every_window(
    contracts: httpx.AsyncClient, make_tenant: TenantFactory
) -> None:
    w = await make_world(make_tenant, "America/Los_Angeles")
    offsets = [-30, -1, 0, 1, 15, 29, 30, 31, 45, 59, 60, 61, 75, 89, 90, 91, 200, None]
    stored: list[tuple[UUID, str, date | None, UUID]] = []
    async with tenant_session(w.tenant) as session:
        for index, offset in enumerate(offsets):
            for status in ("ACTIVE", "ACTIVE", "DRAFT", "TERMINATED", "EXPIRED"):
                payer_id = w.payer_id if index % 2 else w.other_payer_id
                end = w.day(offset)
                contract_id = await add_contract(
                    session, payer_id, w.entity_id, effective_to=end, status=status
                )
                stored.append((contract_id, status, end, payer_id))

    def expected(window: int, payer_id: UUID | None = None) -> set[str]:
        return {
            str(contract_id)
            for contract_id, status, end, payer in stored
            if status == "ACTIVE"
            and end is not None
            and 0 <= (end - w.today).days <= window
            and payer_id in (None, payer)
        }

    banner = await summary(contracts, w.tenant)
    assert banner["active"] == sum(
        1 for _, status, end, _ in stored if status == "ACTIVE" and (end is None or end >= w.today)
    )
    for window in (30, 60, 90):
        listed = await walk(contracts, w.tenant, expiring_within_days=window, limit=3)
        assert set(ids(listed)) == expected(window)
        assert len(listed) == banner["expiring"][str(window)] == len(expected(window))
        assert all(item["status"] == "ACTIVE" for item in listed)
        assert all(0 <= item["days_until_expiry"] <= window for item in listed)

    narrowed = await summary(contracts, w.tenant, payer_id=str(w.payer_id))
    for window in (30, 60, 90):
        listed = await walk(
            contracts, w.tenant, expiring_within_days=window, payer_id=str(w.payer_id)
        )
        assert len(listed) == narrowed["expiring"][str(window)] == len(expected(window, w.payer_id))
    assert banner["expiring"] == {"30": 10, "60": 18, "90": 26}


async def test_an_active_contract_past_its_end_reads_expired_in_the_tenants_time_zone(
    contracts: httpx.AsyncClient, make_tenant: TenantFactory
) -> None:
    # UTC+14 and UTC-11: at any instant, Kiritimati's calendar day is at least one day
    # after Pago Pago's, so the same effective_to is past in one and not in the other.
    east = await make_world(make_tenant, "Pacific/Kiritimati")
    west = await make_world(make_tenant, "Pacific/Pago_Pago")
    yesterday, today, tomorrow = (east.today + timedelta(days=d) for d in (-1, 0, 1))
    assert west.today <= yesterday
    made: dict[str, dict[date, UUID]] = {"east": {}, "west": {}}
    for label, w in (("east", east), ("west", west)):
        async with tenant_session(w.tenant) as session:
            for end in (yesterday, today, tomorrow):
                made[label][end] = await add_contract(
                    session, w.payer_id, w.entity_id, effective_to=end, number=f"N-{end}"
                )

    by_id = {item["contract_id"]: item for item in await walk(contracts, east.tenant)}
    assert by_id[str(made["east"][yesterday])]["status"] == "EXPIRED"
    assert by_id[str(made["east"][yesterday])]["stored_status"] == "ACTIVE"
    assert by_id[str(made["east"][yesterday])]["days_until_expiry"] == -1
    assert by_id[str(made["east"][today])]["status"] == "ACTIVE"
    assert by_id[str(made["east"][today])]["days_until_expiry"] == 0
    assert by_id[str(made["east"][tomorrow])]["days_until_expiry"] == 1

    one = await contracts.get(f"{LIST}/{made['east'][yesterday]}", headers=auth(east.tenant, READ))
    assert one.json()["status"] == "EXPIRED"
    expired = await walk(contracts, east.tenant, status="EXPIRED")
    assert ids(expired) == [str(made["east"][yesterday])]
    active = await walk(contracts, east.tenant, status="ACTIVE")
    assert ids(active) == [str(made["east"][today]), str(made["east"][tomorrow])]
    expiring = await walk(contracts, east.tenant, expiring_within_days=30)
    assert ids(expiring) == ids(active)
    assert await summary(contracts, east.tenant) == {
        "active": 2,
        "expiring": {"30": 2, "60": 2, "90": 2},
    }
    async with tenant_session(east.tenant) as session:
        matched = await expiring_contracts(
            session, today=east.today, within_days=30, payer_id=None, billing_entity_id=None
        )
    assert [m.contract_id for m in matched] == [made["east"][today], made["east"][tomorrow]]

    # The same dates, a day or more behind: nothing has ended yet.
    assert await walk(contracts, west.tenant, status="EXPIRED") == []
    assert (await summary(contracts, west.tenant))["active"] == 3


async def test_paging_puts_open_ended_last_and_never_repeats_or_skips_ties(
    contracts: httpx.AsyncClient, world: World
) -> None:
    async with tenant_session(world.tenant) as session:
        for offset in [40] * 9 + [None] * 7 + [10, 400, -20, 40, None]:
            await add_contract(
                session, world.payer_id, world.entity_id, effective_to=world.day(offset)
            )
        expected = [
            str(i)
            for i in (
                await session.execute(
                    sa.text(
                        "SELECT contract_id FROM billing.payer_contract"
                        " ORDER BY effective_to NULLS LAST, contract_id"
                    )
                )
            ).scalars()
        ]

    for limit in (1, 4, 7, 500):
        assert ids(await walk(contracts, world.tenant, limit=limit)) == expected
    items = await walk(contracts, world.tenant)
    assert [item["effective_to"] for item in items[-8:]] == [None] * 8
    assert all(item["days_until_expiry"] is None for item in items[-8:])


async def test_q_finds_a_substring_of_the_name_or_number_in_any_case(
    contracts: httpx.AsyncClient, world: World
) -> None:
    async with tenant_session(world.tenant) as session:
        for number, name in (
            ("AET-PHYS-0101", "Aetna Professional Services Agreement"),
            ("UHC_2025%", "UnitedHealthcare Facility Agreement"),
            ("MCR-0042", "Medicare Advantage Agreement"),
        ):
            await add_contract(
                session,
                world.payer_id,
                world.entity_id,
                number=number,
                name=name,
                effective_to=world.day(30),
            )

    async def numbers(q: str) -> list[str]:
        return sorted(item["contract_number"] for item in await walk(contracts, world.tenant, q=q))

    assert await numbers("aet") == ["AET-PHYS-0101"]
    assert await numbers("AGREEMENT") == ["AET-PHYS-0101", "MCR-0042", "UHC_2025%"]
    assert await numbers("facility agr") == ["UHC_2025%"]
    assert await numbers("c_2025%") == ["UHC_2025%"]  # LIKE wildcards match literally
    assert await numbers("0_0") == []
    assert await numbers("  phys ") == ["AET-PHYS-0101"]


async def test_filters_by_payer_billing_entity_and_status(
    contracts: httpx.AsyncClient, world: World
) -> None:
    async with tenant_session(world.tenant) as session:
        a = await add_contract(session, world.payer_id, world.entity_id, status="DRAFT")
        b = await add_contract(session, world.other_payer_id, world.entity_id)
        c = await add_contract(session, world.payer_id, world.other_entity_id, status="EXPIRED")
        d = await add_contract(session, world.payer_id, world.entity_id, effective_to=world.day(-1))
        e = await add_contract(
            session, world.other_payer_id, world.other_entity_id, status="TERMINATED"
        )

    async def found(**params: Any) -> set[str]:
        return set(ids(await walk(contracts, world.tenant, **params)))

    assert await found(payer_id=str(world.payer_id)) == {str(a), str(c), str(d)}
    assert await found(billing_entity_id=str(world.other_entity_id)) == {str(c), str(e)}
    assert await found(status="EXPIRED") == {str(c), str(d)}
    assert await found(status="ACTIVE") == {str(b)}
    assert await found(status="DRAFT", payer_id=str(world.payer_id)) == {str(a)}
    assert await found(status="TERMINATED", payer_id=str(world.payer_id)) == set()
    row = (
        await walk(contracts, world.tenant, payer_id=str(world.other_payer_id), status="ACTIVE")
    )[0]
    assert row | {"updated_at": None} == {
        "contract_id": str(b),
        "payer_id": str(world.other_payer_id),
        "payer_name": "UnitedHealthcare",
        "billing_entity_id": str(world.entity_id),
        "billing_entity_name": "Lakeshore Physician Group",
        "name": "Professional Services Agreement",
        "contract_number": row["contract_number"],
        "status": "ACTIVE",
        "stored_status": "ACTIVE",
        "effective_from": "2020-01-01",
        "effective_to": None,
        "days_until_expiry": None,
        "fee_schedule_count": 0,
        "version": 1,
        "updated_at": None,
    }
    bad = await contracts.get(LIST, params={"status": "GONE"}, headers=auth(world.tenant, READ))
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["query", "status"]


async def test_a_window_other_than_30_60_90_and_a_foreign_cursor_are_refused(
    contracts: httpx.AsyncClient, world: World
) -> None:
    async with tenant_session(world.tenant) as session:
        for offset in (1, 2, 3):
            await add_contract(
                session, world.payer_id, world.entity_id, effective_to=world.day(offset)
            )
    headers = auth(world.tenant, READ)

    for path in (LIST, SUMMARY):
        response = await contracts.get(path, params={"expiring_within_days": 45}, headers=headers)
        if path == SUMMARY:  # the banner reports every window: no such parameter
            assert response.status_code == 200
            continue
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"] == [
            {"loc": ["query", "expiring_within_days"], "msg": "must be one of 30, 60, 90"}
        ]

    first = await contracts.get(
        LIST, params={"expiring_within_days": 30, "limit": 1}, headers=headers
    )
    cursor = first.json()["next_cursor"]
    assert cursor is not None
    for other in ({"expiring_within_days": 60}, {"q": "x"}, {"payer_id": str(world.payer_id)}):
        response = await contracts.get(
            LIST, params={"expiring_within_days": 30, **other, "cursor": cursor}, headers=headers
        )
        assert response.status_code == 422, other
        assert response.json()["errors"][0]["loc"] == ["query", "cursor"]
    same = await contracts.get(
        LIST, params={"expiring_within_days": 30, "cursor": cursor}, headers=headers
    )
    assert same.status_code == 200


async def test_one_contract_carries_its_version_in_etag_and_its_fee_schedules(
    contracts: httpx.AsyncClient, world: World
) -> None:
    async with tenant_session(world.tenant) as session:
        contract_id = await add_contract(
            session, world.payer_id, world.entity_id, effective_to=world.day(12)
        )
        other_id = await add_contract(session, world.payer_id, world.entity_id)
        await add_fee_schedule(session, contract_id, "Professional", lines=5)
        await add_fee_schedule(session, contract_id, "Laboratory carve-out", lines=2)
        await add_fee_schedule(session, contract_id, "Anesthesia")
        await add_fee_schedule(session, other_id, "Elsewhere", lines=1)
        await add_fee_schedule(session, None, "Self-pay", lines=1)
    headers = auth(world.tenant, READ)

    response = await contracts.get(f"{LIST}/{contract_id}", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"1"'
    body = response.json()
    assert (body["fee_schedule_count"], body["days_until_expiry"]) == (3, 12)
    assert body["payer_name"] == "Aetna"

    schedules = await walk(contracts, world.tenant, f"{LIST}/{contract_id}/fee-schedules", limit=2)
    assert [(s["name"], s["line_count"]) for s in schedules] == [
        ("Anesthesia", 0),
        ("Laboratory carve-out", 2),
        ("Professional", 5),
    ]
    assert set(schedules[0]) == {
        "fee_schedule_id",
        "contract_id",
        "name",
        "effective_from",
        "effective_to",
        "line_count",
    }
    assert {s["contract_id"] for s in schedules} == {str(contract_id)}
    for path in (f"{LIST}/{uuid4()}", f"{LIST}/{uuid4()}/fee-schedules"):
        missing = await contracts.get(path, headers=headers)
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
    assert (await contracts.get(f"{LIST}/not-a-uuid", headers=headers)).status_code == 422


def create_body(world: World, **values: Any) -> dict[str, Any]:
    return {
        "billing_entity_id": str(world.entity_id),
        "name": "Aetna Professional Services Agreement",
        "contract_number": "AET-PHYS-0101",
        "effective_from": "2025-01-01",
        "effective_to": "2026-12-31",
        **values,
    }


async def test_create_a_contract_under_a_payer(contracts: httpx.AsyncClient, world: World) -> None:
    headers = auth(world.tenant, WRITE, sub="ana.admin")
    path = f"/api/v1/payers/{world.payer_id}/contracts"

    created = await contracts.post(path, json=create_body(world), headers=headers)

    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["etag"] == '"1"'
    assert (body["status"], body["version"], body["payer_id"]) == ("ACTIVE", 1, str(world.payer_id))
    assert body["billing_entity_name"] == "Lakeshore Physician Group"
    fetched = await contracts.get(f"{LIST}/{body['contract_id']}", headers=auth(world.tenant, READ))
    assert fetched.json() == body

    duplicate = await contracts.post(
        path, json=create_body(world, name="Another", status="DRAFT"), headers=headers
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["existing_contract_id"] == body["contract_id"]
    assert body["contract_id"] in duplicate.json()["detail"]
    # The same number with another payer is another contract.
    other = await contracts.post(
        f"/api/v1/payers/{world.other_payer_id}/contracts",
        json=create_body(world, effective_to=None, status="DRAFT"),
        headers=headers,
    )
    assert other.status_code == 201, other.text
    assert (other.json()["effective_to"], other.json()["status"]) == (None, "DRAFT")

    rows = await audit_rows(world.tenant, "payer_contract")
    assert [(r.actor, r.action, r.entity_id) for r in rows] == [
        ("ana.admin", "CREATE", body["contract_id"]),
        ("ana.admin", "CREATE", other.json()["contract_id"]),
    ]
    assert "contract_number" in rows[0].detail["fields"]


async def test_create_names_each_bad_field(contracts: httpx.AsyncClient, world: World) -> None:
    headers = auth(world.tenant, WRITE)
    path = f"/api/v1/payers/{world.payer_id}/contracts"

    async def errors(body: dict[str, Any], url: str = path) -> tuple[int, Any]:
        response = await contracts.post(url, json=body, headers=headers)
        assert response.headers["content-type"] == "application/problem+json"
        return response.status_code, response.json().get("errors")

    assert await errors(create_body(world, effective_to="2024-12-31")) == (
        422,
        [{"loc": ["effective_to"], "msg": "must be on or after effective_from (2025-01-01)"}],
    )
    assert await errors(create_body(world, billing_entity_id=str(uuid4()))) == (
        422,
        [
            {
                "loc": ["billing_entity_id"],
                "msg": "no billing entity with this id in your organization",
            }
        ],
    )
    assert (await errors(create_body(world), f"/api/v1/payers/{uuid4()}/contracts"))[0] == 404
    status, problems = await errors(create_body(world, status="ENDED", name=""))
    assert status == 422
    assert {tuple(p["loc"]) for p in problems} == {("status",), ("name",)}
    status, problems = await errors(create_body(world, payer_id=str(world.payer_id)))
    assert (status, problems[0]["loc"]) == (422, ["payer_id"])
    assert await audit_rows(world.tenant, "payer_contract") == []


async def existing(world: World, **values: Any) -> UUID:
    async with tenant_session(world.tenant) as session:
        return await add_contract(session, world.payer_id, world.entity_id, **values)


def patch_url(world: World, contract_id: UUID, payer_id: UUID | None = None) -> str:
    return f"/api/v1/payers/{payer_id or world.payer_id}/contracts/{contract_id}"


async def test_patch_honours_if_match(contracts: httpx.AsyncClient, world: World) -> None:
    contract_id = await existing(world, effective_to=date(2026, 6, 30))
    url = patch_url(world, contract_id)

    async def patch(if_match: str | None, **body: Any) -> httpx.Response:
        headers = auth(world.tenant, WRITE)
        if if_match is not None:
            headers["If-Match"] = if_match
        return await contracts.patch(url, json=body, headers=headers)

    first = await patch('"1"', name="Renamed")
    assert first.status_code == 200, first.text
    assert first.headers["etag"] == '"2"'
    assert (first.json()["name"], first.json()["version"]) == ("Renamed", 2)

    stale = await patch('"1"', name="Lost update")
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert stale.json()["current_version"] == 2
    assert stale.headers["etag"] == '"2"', "the 412 tells the client the version to reload"

    assert (await patch('W/"2"', name="Weak")).headers["etag"] == '"3"'
    assert (await patch("3", name="Bare")).headers["etag"] == '"4"'
    assert (await patch(None, name="Unconditional")).headers["etag"] == '"5"'
    unchanged = await patch('"5"', name="Unconditional")
    assert (unchanged.status_code, unchanged.headers["etag"]) == (200, '"5"')
    garbage = await patch("version five", name="x")
    assert garbage.status_code == 422
    assert garbage.json()["errors"][0]["loc"] == ["header", "If-Match"]

    got = await contracts.get(f"{LIST}/{contract_id}", headers=auth(world.tenant, READ))
    assert (got.json()["name"], got.headers["etag"]) == ("Unconditional", '"5"')
    rows = await audit_rows(world.tenant, "payer_contract")
    assert [(r.action, r.detail["fields"]) for r in rows] == [("UPDATE", ["name"])] * 4


async def test_two_simultaneous_edits_with_the_same_if_match_one_wins(
    contracts: httpx.AsyncClient, world: World
) -> None:
    contract_id = await existing(world)
    headers = auth(world.tenant, WRITE) | {"If-Match": '"1"'}

    responses = await asyncio.gather(
        *(
            contracts.patch(
                patch_url(world, contract_id), json={"name": f"Edit {n}"}, headers=headers
            )
            for n in range(2)
        )
    )

    assert sorted(r.status_code for r in responses) == [200, 412]
    winner = next(r for r in responses if r.status_code == 200)
    got = await contracts.get(f"{LIST}/{contract_id}", headers=auth(world.tenant, READ))
    assert (got.json()["name"], got.json()["version"]) == (winner.json()["name"], 2)


async def test_a_contract_is_edited_only_under_its_own_payer(
    contracts: httpx.AsyncClient, world: World
) -> None:
    contract_id = await existing(world)
    headers = auth(world.tenant, WRITE)

    for url in (
        patch_url(world, contract_id, world.other_payer_id),
        patch_url(world, uuid4()),
    ):
        response = await contracts.patch(url, json={"name": "Hijacked"}, headers=headers)
        assert response.status_code == 404, response.text
    got = await contracts.get(f"{LIST}/{contract_id}", headers=auth(world.tenant, READ))
    assert got.json()["version"] == 1


async def test_patched_dates_must_still_hold_together(
    contracts: httpx.AsyncClient, world: World
) -> None:
    contract_id = await existing(
        world, effective_from=date(2025, 1, 1), effective_to=date(2025, 12, 31)
    )
    url = patch_url(world, contract_id)
    headers = auth(world.tenant, WRITE)

    async def problem(body: dict[str, Any]) -> list[dict[str, Any]]:
        response = await contracts.patch(url, json=body, headers=headers)
        assert response.status_code == 422, response.text
        errors: list[dict[str, Any]] = response.json()["errors"]
        return errors

    assert await problem({"effective_to": "2024-12-31"}) == [
        {"loc": ["effective_to"], "msg": "must be on or after effective_from (2025-01-01)"}
    ]
    assert await problem({"effective_from": "2026-01-01"}) == [
        {"loc": ["effective_from"], "msg": "must be on or before effective_to (2025-12-31)"}
    ]
    assert (await problem({"effective_from": "2026-01-01", "effective_to": "2025-06-30"}))[0][
        "loc"
    ] == ["effective_to"]
    assert (await problem({"name": None}))[0] == {"loc": ["name"], "msg": "may not be null"}
    assert (await problem({"billing_entity_id": str(uuid4())}))[0]["loc"] == ["billing_entity_id"]

    moved = await contracts.patch(
        url, json={"effective_from": "2026-01-01", "effective_to": "2027-12-31"}, headers=headers
    )
    assert moved.status_code == 200, moved.text
    got = await contracts.get(f"{LIST}/{contract_id}", headers=auth(world.tenant, READ))
    assert (got.json()["effective_from"], got.json()["version"]) == ("2026-01-01", 2)


async def test_an_explicit_null_end_makes_a_contract_open_ended(
    contracts: httpx.AsyncClient, world: World
) -> None:
    contract_id = await existing(world, effective_to=world.day(-3))
    url = patch_url(world, contract_id)
    headers = auth(world.tenant, WRITE)
    got = (await contracts.get(f"{LIST}/{contract_id}", headers=auth(world.tenant, READ))).json()
    assert (got["status"], got["stored_status"]) == ("EXPIRED", "ACTIVE")

    # The edit form sends back what it read (status EXPIRED) with a later end date: the
    # contract reads ACTIVE again, rather than being stored EXPIRED by the round trip.
    form = {k: got[k] for k in ("name", "contract_number", "status", "effective_from")}
    renewed = await contracts.patch(
        url, json={**form, "effective_to": str(world.day(365))}, headers=headers
    )
    assert renewed.status_code == 200, renewed.text
    assert (renewed.json()["status"], renewed.json()["days_until_expiry"]) == ("ACTIVE", 365)

    opened = await contracts.patch(url, json={"effective_to": None}, headers=headers)
    assert opened.status_code == 200
    assert opened.json()["effective_to"] is None
    assert opened.json()["days_until_expiry"] is None
    assert opened.json()["version"] == 3

    terminated = await contracts.patch(url, json={"status": "TERMINATED"}, headers=headers)
    assert terminated.json()["status"] == terminated.json()["stored_status"] == "TERMINATED"


async def test_a_new_contract_number_must_be_free_with_that_payer(
    contracts: httpx.AsyncClient, world: World
) -> None:
    taken = await existing(world, number="AET-1")
    contract_id = await existing(world, number="AET-2")

    response = await contracts.patch(
        patch_url(world, contract_id),
        json={"contract_number": "AET-1"},
        headers=auth(world.tenant, WRITE),
    )

    assert response.status_code == 409
    assert response.json()["existing_contract_id"] == str(taken)


async def test_expiring_contracts_for_the_dispatcher_match_the_list(
    contracts: httpx.AsyncClient, world: World
) -> None:
    async with tenant_session(world.tenant) as session:
        for offset, payer_id, entity_id in (
            (5, world.payer_id, world.entity_id),
            (5, world.other_payer_id, world.entity_id),
            (0, world.payer_id, world.other_entity_id),
            (61, world.payer_id, world.entity_id),
            (-1, world.payer_id, world.entity_id),
            (None, world.payer_id, world.entity_id),
        ):
            await add_contract(session, payer_id, entity_id, effective_to=world.day(offset))
        await add_contract(
            session, world.payer_id, world.entity_id, effective_to=world.day(3), status="DRAFT"
        )

        async def matched(**scope: Any) -> list[Any]:
            values = {"payer_id": None, "billing_entity_id": None, **scope}
            return await expiring_contracts(session, today=world.today, **values)

        everything = await matched(within_days=90)
        in_scope = await matched(
            within_days=30, payer_id=world.payer_id, billing_entity_id=world.entity_id
        )
        first = await matched(within_days=90, limit=1)

    listed = await walk(contracts, world.tenant, expiring_within_days=90)
    assert [str(m.contract_id) for m in everything] == ids(listed)
    assert [m.days_left for m in everything] == [0, 5, 5, 61]
    assert [(m.days_left, m.payer_name, m.billing_entity_name) for m in in_scope] == [
        (5, "Aetna", "Lakeshore Physician Group")
    ]
    assert first == everything[:1]
