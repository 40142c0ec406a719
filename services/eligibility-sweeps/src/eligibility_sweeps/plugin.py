"""``rcm`` plugin of the sweeps service: its migration tree, import kinds and demo seed."""

from rcm_kit.plugins import Plugin

PLUGIN = Plugin(name="sweeps", migration_tree="sweeps", order=20)
