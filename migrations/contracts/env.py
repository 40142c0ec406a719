from contract_registry.models import metadata
from rcm_kit.migrations import run_env

run_env(metadata)
