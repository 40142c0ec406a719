"""``rcm`` plugin of the contract registry: its migration tree, import kinds and demo seed."""

from contract_registry.contract.importers import KINDS as CONTRACT_KINDS
from contract_registry.fee_schedule.importers import KINDS as SCHEDULE_KINDS
from contract_registry.seed import seed
from rcm_kit.plugins import Plugin

PLUGIN = Plugin(
    name="contracts",
    migration_tree="contracts",
    order=30,
    import_kinds={**CONTRACT_KINDS, **SCHEDULE_KINDS},
    seed=seed,
)
