from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from contract_registry.plugin import PLUGIN
from rcm_kit.clock import SystemClock, today_in
from rcm_kit.plugins import SeedContext
from rcm_kit.tenancy import Tenant
from rcm_reference.plugin import PLUGIN as REFERENCE
from tests.conftest import TenantFactory, auth, tenant_session
from tests.contract_registry.test_contracts_api import walk

TABLES = (
    "billing.payer_contract",
    "billing.fee_schedule",
    "billing.fee_schedule_line",
    "billing.contract_expiry_alert",
)


async def run_seed(tenant: Tenant, today: date) -> str:
    assert REFERENCE.seed is not None
    assert PLUGIN.seed is not None
    async with tenant_session(tenant) as session:
        await REFERENCE.seed(SeedContext(session, today, tenant.slug))
    async with tenant_session(tenant) as session:
        summary: str = await PLUGIN.seed(SeedContext(session, today, tenant.slug))
    return summary


async def snapshot(tenant: Tenant) -> dict[str, tuple[Any, ...]]:
    async with tenant_session(tenant) as session:
        return {
            table: tuple(
                (
                    await session.execute(sa.text(f"SELECT count(*), max(updated_at) FROM {table}"))
                ).one()
            )
            for table in TABLES
        }


async def test_seed_twice_gives_the_same_rows(make_tenant: TenantFactory) -> None:
    tenant = await make_tenant(timezone="America/Chicago")
    today = today_in(SystemClock(), tenant.timezone)

    first = await run_seed(tenant, today)
    after_first = await snapshot(tenant)
    second = await run_seed(tenant, today)

    assert not first.endswith("(0 inserted, 0 updated)"), first
    assert second.endswith("(0 inserted, 0 updated)"), second
    assert await snapshot(tenant) == after_first
    contracts, schedules, lines, alerts = (after_first[t][0] for t in TABLES)
    assert 60 <= contracts <= 120
    assert schedules > contracts * 0.5
    assert lines >= schedules * 4
    assert alerts == 3

    # A day later the dates move along (the windows stay filled); the natural keys do not.
    later = await run_seed(tenant, today + timedelta(days=1))
    assert "(0 inserted, " in later
    assert not later.endswith(" 0 updated)"), later
    assert (await snapshot(tenant))["billing.payer_contract"][0] == contracts


async def test_the_seed_fills_every_window_and_every_status(
    contracts: httpx.AsyncClient, make_tenant: TenantFactory
) -> None:
    tenant = await make_tenant(timezone="Asia/Kolkata")
    await run_seed(tenant, today_in(SystemClock(), tenant.timezone))
    headers = auth(tenant, "config.read")

    banner = (await contracts.get("/api/v1/admin/contracts/summary", headers=headers)).json()
    items = await walk(contracts, tenant, limit=500)
    statuses = {item["status"] for item in items}
    alerts = await walk(contracts, tenant, "/api/v1/admin/contracts/expiry-alerts")

    assert 0 < banner["expiring"]["30"] < banner["expiring"]["60"] < banner["expiring"]["90"]
    assert banner["active"] > banner["expiring"]["90"]
    assert statuses == {"ACTIVE", "DRAFT", "EXPIRED", "TERMINATED"}
    assert any(i["status"] == "EXPIRED" and i["stored_status"] == "ACTIVE" for i in items)
    assert any(i["effective_to"] is None for i in items)
    assert any(i["days_until_expiry"] == 0 for i in items)
    assert sum(1 for i in items if i["fee_schedule_count"] > 0) > len(items) * 0.5
    assert sorted(a["lead_days"] for a in alerts) == [30, 60, 90]
    assert {(a["payer_id"] is None, a["billing_entity_id"] is None) for a in alerts} == {
        (True, True),
        (False, True),
        (True, False),
    }
    assert all(r.endswith(("example.org", "example.com")) for a in alerts for r in a["recipients"])
    with_schedules = next(i for i in items if i["fee_schedule_count"] > 0)
    schedules = await walk(
        contracts, tenant, f"/api/v1/admin/contracts/{with_schedules['contract_id']}/fee-schedules"
    )
    assert all(s["line_count"] >= 4 for s in schedules)
