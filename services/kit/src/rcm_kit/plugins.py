"""How each owner of tenant tables plugs into ``rcm``: migrations, import kinds, seeds.

A package registers a ``Plugin`` under the ``rcm.plugins`` entry-point group. The kit
discovers them, so it knows every migration tree, import kind and demo seed without
owning a table or importing a service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from rcm_kit.importing import ImportKind


@dataclass(frozen=True)
class SeedContext:
    """What a demo seed gets: the tenant's session and its calendar."""

    session: AsyncSession
    today: date
    tenant_slug: str


@dataclass(frozen=True)
class Plugin:
    name: str
    # Directory under migrations/ holding this owner's Alembic tree; None = no tables.
    migration_tree: str | None = None
    # Trees upgrade in ascending order and downgrade in descending order.
    order: int = 100
    import_kinds: Mapping[str, ImportKind] = field(default_factory=dict)
    seed: Callable[[SeedContext], Awaitable[Any]] | None = None


def load_plugins() -> list[Plugin]:
    plugins = [ep.load() for ep in entry_points(group="rcm.plugins")]
    for plugin in plugins:
        if not isinstance(plugin, Plugin):
            raise TypeError(f"rcm.plugins entry {plugin!r} is not a Plugin")
    return sorted(plugins, key=lambda p: (p.order, p.name))


def import_kinds(plugins: list[Plugin]) -> dict[str, ImportKind]:
    kinds: dict[str, ImportKind] = {}
    for plugin in plugins:
        for name, kind in plugin.import_kinds.items():
            if name in kinds:
                raise ValueError(f"import kind {name!r} is registered twice")
            kinds[name] = kind
    return kinds
