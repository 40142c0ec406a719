"""``rcm`` plugin of the contract registry (its tables and import kinds come with the contract issue)."""

from rcm_kit.plugins import Plugin

PLUGIN = Plugin(name="contracts", order=30)
