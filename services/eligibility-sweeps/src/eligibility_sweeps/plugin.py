"""``rcm`` plugin of the sweeps service: its migration tree, import kinds and demo seed."""

from eligibility_sweeps.member.importers import KINDS
from eligibility_sweeps.seed import seed
from rcm_kit.plugins import Plugin

PLUGIN = Plugin(name="sweeps", migration_tree="sweeps", order=20, import_kinds=KINDS, seed=seed)
