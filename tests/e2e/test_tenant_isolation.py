"""Tenant isolation over every read route of both services: tenant A's token never sees a
row of tenant B, and B's ids are 404 for A."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import sqlalchemy as sa

from eligibility_sweeps.models import (
    eligibility_check,
    eligibility_sweep_run,
    inbound_file,
    sweep_run_member,
    sweep_schedule,
    trading_partner,
    trading_partner_payer,
)
from rcm_kit.auth import ALL_PERMISSIONS
from rcm_kit.tenancy import Tenant
from rcm_reference.models import billing_entity
from tests.conftest import RunningServer, TenantFactory, auth, tenant_session
from tests.contract_registry.factories import add_alert, add_contract, add_fee_schedule
from tests.eligibility_sweeps.factories import add_facility, add_member, add_payer, add_policy
from tests.kit.routes import protected_routes

# Routes that answer an aggregate rather than rows: what tenant A must see there, given
# that tenant B holds more contracts than A (so a leak would change the numbers).
AGGREGATES: dict[str, Any] = {
    "/api/v1/admin/contracts/summary": {"active": 1, "expiring": {"30": 1, "60": 1, "90": 1}},
    # The dispatcher's status holds no tenant data at all.
    "/api/v1/admin/contracts/expiry-alerts/dispatcher": None,
    # The same presets for everyone; the scheduler's status counts the caller's own
    # schedules only (tests/eligibility_sweeps/test_schedules.py checks that).
    "/api/v1/eligibility/sweeps/cron-presets": None,
    "/api/v1/eligibility/sweeps/scheduler": None,
}


async def _populate(tenant: Tenant, tag: str, contracts: int = 1) -> dict[str, UUID]:
    async with tenant_session(tenant) as session:
        payer_id = await add_payer(session, f"{tag}-P", f"{tag} Payer")
        facility_id = await add_facility(session, f"{tag}-F")
        member_id = await add_member(session, f"{tag}-M", last_name=f"{tag}son")
        policy_id = await add_policy(session, member_id, payer_id)
        entity_id = (
            await session.execute(
                sa.insert(billing_entity)
                .values(billing_entity_code=f"{tag}-B", name=f"{tag} Billing")
                .returning(billing_entity.c.billing_entity_id)
            )
        ).scalar_one()
        ending = date.today() + timedelta(days=20)
        contract_ids = [
            await add_contract(session, payer_id, entity_id, effective_to=ending)
            for _ in range(contracts)
        ]
        schedule_id = await add_fee_schedule(session, contract_ids[0], f"{tag} Fee Schedule")
        alert_id = await add_alert(session, payer_id=payer_id)
        partner_id = (
            await session.execute(
                sa.insert(trading_partner)
                .values(
                    name=f"{tag} Clearinghouse",
                    transport="x12-http",
                    endpoint_url="https://ch.example.test/x12",
                    auth_type="none",
                    sender_id=f"{tag}SENDER",
                    receiver_id="CH",
                )
                .returning(trading_partner.c.trading_partner_id)
            )
        ).scalar_one()
        await session.execute(
            sa.insert(trading_partner_payer).values(
                trading_partner_id=partner_id, payer_id=payer_id
            )
        )
        check_id = (
            await session.execute(
                sa.insert(eligibility_check)
                .values(
                    member_id=member_id,
                    coverage_policy_id=policy_id,
                    payer_id=payer_id,
                    trading_partner_id=partner_id,
                    service_date=date.today(),
                    status="FAILED",
                    error="Timeout after 20 s",
                    trace_number=f"{tag}{uuid4().hex}"[:50],
                )
                .returning(eligibility_check.c.check_id)
            )
        ).scalar_one()
        inbound_file_id = (
            await session.execute(
                sa.insert(inbound_file)
                .values(
                    trading_partner_id=partner_id,
                    received_at=sa.func.now(),
                    content_type="application/edi-x12",
                    kind="271",
                    digest=uuid4().hex + uuid4().hex,
                    body="ISA*...",
                    outcome="UNMATCHED",
                    detail="No check has trace number X",
                )
                .returning(inbound_file.c.inbound_file_id)
            )
        ).scalar_one()
        sweep_schedule_id = (
            await session.execute(
                sa.insert(sweep_schedule)
                .values(
                    name=f"{tag} Nightly",
                    cron="0 2 * * *",
                    facility_id=facility_id,
                    window_start_days=0,
                    window_end_days=7,
                    payer_ids=[payer_id],
                )
                .returning(sweep_schedule.c.schedule_id)
            )
        ).scalar_one()
        sweep_run_id = (
            await session.execute(
                sa.insert(eligibility_sweep_run)
                .values(
                    schedule_id=sweep_schedule_id,
                    name=f"{tag} Nightly",
                    trigger="MANUAL",
                    status="QUEUED",
                    facility_id=facility_id,
                    service_date_from=date.today(),
                    service_date_to=date.today() + timedelta(days=7),
                    payer_ids=[payer_id],
                )
                .returning(eligibility_sweep_run.c.sweep_run_id)
            )
        ).scalar_one()
        await session.execute(
            sa.insert(sweep_run_member).values(
                sweep_run_id=sweep_run_id,
                member_id=member_id,
                service_date=date.today(),
                status="FAILED",
                failure_reason="Timeout after 20 s",
            )
        )
    return {
        "schedule_id": sweep_schedule_id,
        "sweep_run_id": sweep_run_id,
        "inbound_file_id": inbound_file_id,
        "check_id": check_id,
        "payer_id": payer_id,
        "facility_id": facility_id,
        "member_id": member_id,
        "coverage_policy_id": policy_id,
        "billing_entity_id": entity_id,
        "contract_id": contract_ids[0],
        "fee_schedule_id": schedule_id,
        "alert_id": alert_id,
        "trading_partner_id": partner_id,
    }


def _ids(value: Any) -> set[str]:
    """Every value of an ``*_id`` field anywhere in a response body."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith("_id") and isinstance(item, str):
                found.add(item)
            found |= _ids(item)
    elif isinstance(value, list):
        for item in value:
            found |= _ids(item)
    return found


@pytest.fixture(scope="module")
async def two_tenants(make_tenant: TenantFactory) -> tuple[Tenant, dict, Tenant, dict]:
    a, b = await make_tenant(), await make_tenant()
    return a, await _populate(a, "A"), b, await _populate(b, "B", contracts=3)


@pytest.mark.parametrize("service", ["sweeps", "contracts"])
async def test_a_token_never_reaches_another_tenants_rows(
    service: str,
    sweeps_server: RunningServer,
    contracts_server: RunningServer,
    two_tenants: tuple[Tenant, dict, Tenant, dict],
) -> None:
    server = {"sweeps": sweeps_server, "contracts": contracts_server}[service]
    a, a_ids, _, b_ids = two_tenants
    theirs = {str(v) for v in b_ids.values()}
    ours = {str(v) for v in a_ids.values()}
    headers = auth(a, list(ALL_PERMISSIONS))
    checked = 0
    async with httpx.AsyncClient(base_url=server.url) as client:
        for route in protected_routes(server.server.config.app):
            if route.method != "GET":
                continue
            params = re.findall(r"\{([^}]+)\}", route.path)
            missing = [p for p in params if p not in b_ids]
            assert not missing, f"{route}: give the isolation test an id for {missing}"
            if not params:
                response = await client.get(route.path, headers=headers, params={"limit": 500})
                assert response.status_code == 200, f"{route}: {response.text}"
                if route.path in AGGREGATES:
                    expected = AGGREGATES[route.path]
                    assert expected is None or response.json() == expected, str(route)
                    checked += 1
                    continue
                seen = _ids(response.json())
                assert not seen & theirs, f"{route} leaked tenant B's rows"
                assert seen & ours, f"{route} shows none of tenant A's own rows"
            else:
                foreign = route.path
                own = route.path
                for param in params:
                    foreign = foreign.replace(f"{{{param}}}", str(b_ids[param]))
                    own = own.replace(f"{{{param}}}", str(a_ids[param]))
                response = await client.get(foreign, headers=headers)
                assert response.status_code == 404, f"{route} with B's id: {response.text}"
                assert (await client.get(own, headers=headers)).status_code == 200, str(route)
            checked += 1
    assert checked >= 2
