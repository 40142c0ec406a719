"""``rcm`` plugin of the reference tables: their migration tree, import kinds and seed."""

from rcm_kit.plugins import Plugin
from rcm_reference.importers import KINDS
from rcm_reference.seed import seed

PLUGIN = Plugin(
    name="reference", migration_tree="reference", order=10, import_kinds=KINDS, seed=seed
)
