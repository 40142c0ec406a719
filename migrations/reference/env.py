from rcm_kit.migrations import run_env
from rcm_reference.models import metadata

run_env(metadata)
