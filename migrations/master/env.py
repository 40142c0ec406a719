from rcm_kit.migrations import run_env
from rcm_kit.tenancy import master_metadata

run_env(master_metadata)
