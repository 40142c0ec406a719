from __future__ import annotations

import time
from datetime import timedelta

import sqlalchemy as sa

from rcm_kit.clock import SystemClock, today_in
from rcm_kit.tenancy import Tenant
from tests.conftest import TenantFactory, run_rcm, tenant_session

TABLES = (
    "ref.payer",
    "ref.facility",
    "ref.billing_entity",
    "member.member",
    "member.coverage_policy",
    "service.service_event",
    "eligibility.trading_partner",
)


async def _snapshot(tenant: Tenant) -> dict[str, object]:
    """Row counts and the newest ``updated_at`` of every seeded table."""
    async with tenant_session(tenant) as session:
        return {
            table: tuple(
                (
                    await session.execute(sa.text(f"SELECT count(*), max(updated_at) FROM {table}"))
                ).one()
            )
            for table in TABLES
        }


async def test_seed_demo_twice_gives_the_same_rows(
    make_tenant: TenantFactory, master_url: str, redis_url: str
) -> None:
    tenant = await make_tenant()

    started = time.monotonic()
    first = await run_rcm(
        "seed-demo", "--tenant", tenant.slug, master_url=master_url, redis_url=redis_url
    )
    elapsed = time.monotonic() - started
    after_first = await _snapshot(tenant)
    second = await run_rcm(
        "seed-demo", "--tenant", tenant.slug, master_url=master_url, redis_url=redis_url
    )

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert elapsed < 30, f"seed-demo took {elapsed:.1f} s"
    lines = second.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["reference", "sweeps", "contracts"]
    assert all(line.endswith("(0 inserted, 0 updated)") for line in lines), lines
    assert await _snapshot(tenant) == after_first


async def test_seed_demo_gives_sweeps_something_to_find(
    make_tenant: TenantFactory, master_url: str, redis_url: str
) -> None:
    tenant = await make_tenant(timezone="America/Chicago")
    result = await run_rcm(
        "seed-demo", "--tenant", tenant.slug, master_url=master_url, redis_url=redis_url
    )
    assert result.returncode == 0, result.stderr
    today = today_in(SystemClock(), tenant.timezone)

    async with tenant_session(tenant) as session:

        async def one(sql: str) -> sa.Row[tuple[object, ...]]:
            return (await session.execute(sa.text(sql), {"today": today})).one()

        members, no_coverage = await one(
            "SELECT count(*), count(*) FILTER (WHERE NOT EXISTS ("
            " SELECT 1 FROM member.coverage_policy c WHERE c.member_id = m.member_id))"
            " FROM member.member m"
        )
        secondary, lapsed, child, spouse = await one(
            "SELECT count(*) FILTER (WHERE priority = 2),"
            " count(*) FILTER (WHERE effective_to < :today),"
            " count(*) FILTER (WHERE relationship = 'child' AND subscriber_last_name IS NOT NULL),"
            " count(*) FILTER (WHERE relationship = 'spouse') FROM member.coverage_policy"
        )
        first_visit, last_visit = await one(
            "SELECT min(service_date), max(service_date) FROM service.service_event"
        )
        statuses = dict(
            (
                await session.execute(
                    sa.text(
                        "SELECT status, count(*) FROM service.service_event"
                        " WHERE service_date > :today GROUP BY status"
                    ),
                    {"today": today},
                )
            ).all()
        )
        past_statuses = set(
            (
                await session.execute(
                    sa.text(
                        "SELECT DISTINCT status FROM service.service_event"
                        " WHERE service_date < :today"
                    ),
                    {"today": today},
                )
            ).scalars()
        )

    assert members >= 2000
    assert 0 < no_coverage < members * 0.1
    assert min(secondary, lapsed, child, spouse) > 0
    assert today - timedelta(days=14) <= first_visit < today < last_visit
    assert last_visit <= today + timedelta(days=30)
    assert statuses["SCHEDULED"] > sum(statuses.values()) * 0.8
    assert past_statuses == {"COMPLETED", "CANCELLED", "NO_SHOW"}


async def test_seed_demo_routes_every_payer_through_the_sandbox_with_a_member_per_rule(
    make_tenant: TenantFactory, master_url: str, redis_url: str
) -> None:
    tenant = await make_tenant()
    done = await run_rcm(
        "seed-demo", "--tenant", tenant.slug, master_url=master_url, redis_url=redis_url
    )
    assert done.returncode == 0, done.stderr
    async with tenant_session(tenant) as session:
        partner = (
            await session.execute(sa.text("SELECT * FROM eligibility.trading_partner"))
        ).one()
        unrouted = (
            await session.execute(
                sa.text(
                    "SELECT count(*) FROM ref.payer p WHERE p.active AND NOT EXISTS ("
                    " SELECT 1 FROM eligibility.trading_partner_payer r"
                    " WHERE r.payer_id = p.payer_id)"
                )
            )
        ).scalar()
        rules = (
            await session.execute(
                sa.text(
                    "SELECT c.subscriber_id FROM member.coverage_policy c"
                    " JOIN member.member m USING (member_id)"
                    " WHERE m.external_id LIKE 'DEMO-SBX-%' ORDER BY 1"
                )
            )
        ).scalars()
    assert partner.transport == "core-mime"
    assert partner.endpoint_url == "http://127.0.0.1:8090/core"
    assert unrouted == 0
    assert {"SBX-ACTIVE", "SBX-TA1", "SBX-HANG", "SBX-DELAYED"} <= set(rules)
