from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from eligibility_sweeps.models import metadata
from rcm_kit import migrations
from rcm_kit.db import create_engine
from rcm_kit.plugins import Plugin
from tests.conftest import TenantFactory

OWN_SCHEMAS = {t.schema for t in metadata.tables.values()}


def _differences(connection: sa.Connection) -> list[Any]:
    def own(name: str | None, type_: str, parent: Any) -> bool:
        return type_ != "schema" or name in OWN_SCHEMAS

    context = MigrationContext.configure(
        connection,
        opts={"include_schemas": True, "include_name": own, "compare_type": True},
    )
    return compare_metadata(context, metadata)


async def _schemas_and_tables(url: str) -> tuple[set[str], set[str]]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            schemas = set(
                (
                    await conn.execute(
                        sa.text(
                            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%'"
                            " AND nspname NOT IN ('information_schema', 'public')"
                        )
                    )
                ).scalars()
            )
            tables = set(
                (
                    await conn.execute(
                        sa.text(
                            "SELECT schemaname || '.' || tablename FROM pg_tables"
                            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
                            " AND tablename NOT LIKE 'alembic\\_version\\_%'"
                        )
                    )
                ).scalars()
            )
    finally:
        await engine.dispose()
    return schemas, tables


async def test_models_match_the_migrated_database(make_tenant: TenantFactory) -> None:
    tenant = await make_tenant()
    engine = create_engine(tenant.database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(_differences)
    finally:
        await engine.dispose()

    assert differences == []


async def test_downgrade_to_base_leaves_nothing_and_upgrades_again(
    make_tenant: TenantFactory, plugins: list[Plugin], migrations_dir: Path
) -> None:
    tenant = await make_tenant()
    trees = migrations.tenant_trees(plugins, migrations_dir)
    schemas, tables = await _schemas_and_tables(tenant.database_url)
    assert {"member", "service", "eligibility"} <= schemas
    assert {"member.member", "member.coverage_policy", "service.service_event"} <= tables

    await migrations.downgrade_tenant(tenant.database_url, trees)

    assert await _schemas_and_tables(tenant.database_url) == (set(), set())
    await migrations.upgrade_tenant(tenant.database_url, trees)
    assert await _schemas_and_tables(tenant.database_url) == (schemas, tables)
