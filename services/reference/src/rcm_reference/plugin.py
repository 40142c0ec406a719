"""``rcm`` plugin of the reference tables: their migration tree, import kinds and seed."""

from rcm_kit.plugins import Plugin

PLUGIN = Plugin(name="reference", migration_tree="reference", order=10)
