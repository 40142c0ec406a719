"""Every migration tree upgrades, downgrades to base in order, and upgrades again; and
``rcm migrate`` carries on past a broken tenant."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from contract_registry.models import metadata as contracts_metadata
from eligibility_sweeps.models import metadata as sweeps_metadata
from rcm_kit import migrations, provision
from rcm_kit.db import create_engine, database_url_for
from rcm_kit.plugins import Plugin
from rcm_kit.tenancy import master_metadata
from rcm_reference.models import metadata as reference_metadata
from tests.conftest import drop_databases, run_rcm

EXPECTED_TABLES = {
    "ref.payer",
    "ref.billing_entity",
    "ref.facility",
    "member.member",
    "member.coverage_policy",
    "service.service_event",
    "eligibility.audit_event",
    "billing.payer_contract",
    "billing.fee_schedule",
    "billing.fee_schedule_line",
    "billing.contract_expiry_alert",
    "billing.contract_expiry_alert_delivery",
    "billing.audit_event",
}
TREE_METADATA = {
    "master": master_metadata,
    "reference": reference_metadata,
    "sweeps": sweeps_metadata,
    "contracts": contracts_metadata,
}
# A member's visits; the roster's first leg (keys, then INCLUDE columns: index-only).
ROSTER_INDEXES = {
    ("member_id", "service_date"),
    ("status", "service_date", "facility_id", "member_id"),
}


async def _connect(url: str) -> asyncpg.Connection:
    u = make_url(url)
    return await asyncpg.connect(
        host=u.host, port=u.port, user=u.username, password=u.password, database=u.database
    )


async def _tables(url: str) -> set[str]:
    conn = await _connect(url)
    try:
        rows = await conn.fetch(
            "SELECT schemaname || '.' || tablename AS name FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        )
    finally:
        await conn.close()
    return {row["name"] for row in rows}


async def _index_columns(url: str, table: str) -> set[tuple[str, ...]]:
    conn = await _connect(url)
    try:
        rows = await conn.fetch(
            """
            SELECT array_agg(a.attname ORDER BY k.ord) AS columns
            FROM pg_index i
            JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
            WHERE i.indrelid = $1::regclass
            GROUP BY i.indexrelid
            """,
            table,
        )
    finally:
        await conn.close()
    return {tuple(row["columns"]) for row in rows}


async def _schemas(url: str) -> set[str]:
    conn = await _connect(url)
    try:
        rows = await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%'"
            " AND nspname NOT IN ('information_schema', 'public')"
        )
    finally:
        await conn.close()
    return {row["nspname"] for row in rows}


@pytest.fixture
async def empty_database(server_url: str) -> AsyncIterator[str]:
    name = f"rcmt_{secrets.token_hex(4)}_empty"
    url = database_url_for(server_url, name)
    await provision.ensure_database(provision.maintenance_url(url), name)
    yield url
    await drop_databases(server_url, name)


async def test_tenant_trees_upgrade_downgrade_and_upgrade_again(
    empty_database: str, plugins: list[Plugin], migrations_dir: Path
) -> None:
    trees = migrations.tenant_trees(plugins, migrations_dir)
    assert [t.name for t in trees] == ["reference", "sweeps", "contracts"], "reference first"

    revisions = await migrations.upgrade_tenant(empty_database, trees)
    assert all(revisions.values()), revisions
    tables = await _tables(empty_database)
    assert tables >= EXPECTED_TABLES
    assert {f"public.alembic_version_{t.name}" for t in trees} <= tables
    assert await _index_columns(empty_database, "service.service_event") >= ROSTER_INDEXES

    down = await migrations.downgrade_tenant(empty_database, trees)
    assert set(down.values()) == {None}
    assert {t for t in await _tables(empty_database) if not t.startswith("public.")} == set()
    assert await _schemas(empty_database) == set(), "downgrade drops the owners' schemas"

    again = await migrations.upgrade_tenant(empty_database, trees)
    assert again == revisions


async def test_two_migrations_at_once_take_turns(
    empty_database: str, plugins: list[Plugin], migrations_dir: Path
) -> None:
    # A rollout's migration Job and an operator's `rcm migrate`, say: without the
    # advisory lock both would run the first revision's CREATE TABLEs and one would fail.
    trees = migrations.tenant_trees(plugins, migrations_dir)

    first, second = await asyncio.gather(
        migrations.upgrade_tenant(empty_database, trees),
        migrations.upgrade_tenant(empty_database, trees),
    )

    assert first == second
    assert all(first.values()), first
    assert await _tables(empty_database) >= EXPECTED_TABLES


@pytest.mark.parametrize("tree", list(TREE_METADATA))
async def test_models_match_their_migrations(
    tree: str, empty_database: str, plugins: list[Plugin], migrations_dir: Path
) -> None:
    trees = [migrations.master_tree(migrations_dir)]
    trees += migrations.tenant_trees(plugins, migrations_dir)
    await migrations.apply(empty_database, trees)
    engine = create_engine(empty_database, pool_size=1)
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(migrations.model_differences, TREE_METADATA[tree])
    finally:
        await engine.dispose()
    assert differences == []


async def test_master_tree_upgrade_downgrade_and_upgrade_again(
    empty_database: str, migrations_dir: Path
) -> None:
    tree = [migrations.master_tree(migrations_dir)]
    assert (await migrations.apply(empty_database, tree))["master"]
    assert "master.tenant" in await _tables(empty_database)
    await migrations.apply(empty_database, tree, "downgrade", "base")
    assert "master.tenant" not in await _tables(empty_database)
    assert (await migrations.apply(empty_database, tree))["master"]


async def test_rcm_migrate_carries_on_past_a_broken_tenant(
    server_url: str, redis_url: str, plugins: list[Plugin], migrations_dir: Path
) -> None:
    name = f"rcmt_{secrets.token_hex(4)}_mig"
    master_url = database_url_for(server_url, name)
    try:
        await provision.migrate_master(master_url, migrations_dir)
        master = create_engine(master_url, pool_size=1)
        try:
            for slug in ("one", "broken", "three"):
                await provision.create_tenant(master, plugins, migrations_dir, slug=slug, name=slug)
            broken = await provision.tenant_by_slug(master, "broken")
        finally:
            await master.dispose()
        assert broken is not None
        conn = await _connect(broken.database_url)
        try:  # a revision this code base does not know: the upgrade must fail
            await conn.execute("UPDATE alembic_version_reference SET version_num = 'zzzz'")
        finally:
            await conn.close()

        result = await run_rcm("migrate", master_url=master_url, redis_url=redis_url)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "one: reference=" in result.stdout
        assert "three: reference=" in result.stdout
        assert "broken: FAILED" in result.stderr
        assert "1 tenant(s) failed" in result.stderr
    finally:
        await drop_databases(server_url, name)
