"""Alembic trees: one for the master database, one per owner of tenant tables.

Each tree keeps its own version table (``alembic_version_<tree>``), so each owner's
schema evolves on its own. Tenant trees upgrade in plugin order (reference first) and
downgrade in reverse. Alembic's command API is synchronous; we hand it a connection
from our async engine (Alembic's "connection sharing" recipe), so one event loop runs
everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command, context
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from rcm_kit.plugins import Plugin

MASTER_TREE = "master"


def find_migrations_dir(start: Path | None = None) -> Path:
    """``migrations/`` at the repository root: beside the workspace's pyproject.toml."""
    for base in (start or Path.cwd(), Path(__file__).resolve()):
        for directory in (base, *base.parents):
            candidate = directory / "migrations"
            if (candidate / MASTER_TREE / "env.py").exists():
                return candidate
    raise FileNotFoundError("cannot find the migrations/ directory (set RCM_MIGRATIONS_DIR)")


@dataclass(frozen=True)
class Tree:
    name: str
    directory: Path

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.name}"

    def config(self) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(self.directory))
        cfg.attributes["version_table"] = self.version_table
        return cfg


def tenant_trees(plugins: Iterable[Plugin], migrations_dir: Path) -> list[Tree]:
    return [
        Tree(p.migration_tree, migrations_dir / p.migration_tree)
        for p in sorted(plugins, key=lambda p: p.order)
        if p.migration_tree
    ]


def master_tree(migrations_dir: Path) -> Tree:
    return Tree(MASTER_TREE, migrations_dir / MASTER_TREE)


def owned_objects(metadata: sa.MetaData) -> Callable[..., bool]:
    """An ``include_object`` hook keeping autogenerate to ``metadata``'s own tables: the
    other owners' tables (and version tables) in the same database are not its business."""
    owned = set(metadata.tables)

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if type_ == "table":
            return f"{obj.schema}.{name}" in owned if obj.schema else name in owned
        table = getattr(obj, "table", None)
        return table is None or table.fullname in owned

    return include_object


def model_differences(connection: sa.Connection, metadata: sa.MetaData) -> list[Any]:
    """What autogenerate would change to make the database match ``metadata`` (tests)."""
    context = MigrationContext.configure(
        connection,
        opts={
            "include_schemas": True,
            "include_object": owned_objects(metadata),
            "compare_type": True,
        },
    )
    return list(compare_metadata(context, metadata))


def run_env(target_metadata: sa.MetaData) -> None:
    """The body of every tree's ``env.py``: online migrations on the shared connection."""
    config = context.config
    context.configure(
        connection=config.attributes["connection"],
        target_metadata=target_metadata,
        version_table=config.attributes["version_table"],
        include_schemas=True,
        include_object=owned_objects(target_metadata),
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: sa.Connection, tree: Tree, action: str, revision: str) -> str | None:
    cfg = tree.config()
    cfg.attributes["connection"] = connection
    getattr(command, action)(cfg, revision)
    return MigrationContext.configure(
        connection, opts={"version_table": tree.version_table}
    ).get_current_revision()


# The advisory lock (per database) a migration holds for its transaction.
MIGRATION_LOCK = 0x52434D5F4D4947  # "RCM_MIG"


async def apply(
    url: str, trees: Iterable[Tree], action: str = "upgrade", revision: str = "head"
) -> dict[str, Any]:
    """Run ``action`` (upgrade/downgrade) on each tree in turn; returns each tree's revision.

    Each tree runs in one transaction that first takes ``MIGRATION_LOCK`` on its database,
    so two ``rcm migrate`` runs at once (a rollout's Job and an operator, two replicas'
    init steps) take turns: the second finds the tree at head and does nothing, rather
    than both running the same DDL."""
    engine = create_async_engine(url, poolclass=NullPool)
    revisions: dict[str, Any] = {}
    try:
        for tree in trees:
            async with engine.begin() as conn:
                await conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                )
                revisions[tree.name] = await conn.run_sync(_run, tree, action, revision)
    finally:
        await engine.dispose()
    return revisions


async def upgrade_tenant(url: str, trees: list[Tree]) -> dict[str, Any]:
    return await apply(url, trees, "upgrade", "head")


async def downgrade_tenant(url: str, trees: list[Tree]) -> dict[str, Any]:
    return await apply(url, list(reversed(trees)), "downgrade", "base")
