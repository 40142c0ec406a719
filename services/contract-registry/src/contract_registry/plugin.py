"""``rcm`` plugin of the contract registry: its migration tree, import kinds and demo seed."""

from rcm_kit.plugins import Plugin

PLUGIN = Plugin(name="contracts", migration_tree="contracts", order=30)
