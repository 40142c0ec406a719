"""Fixtures of the eligibility-check tests (the sandbox, a keyed API, a routed tenant),
registered here so every module of this folder can ask for them by name."""

from tests.eligibility_sweeps.checks_support import (  # noqa: F401 (fixtures)
    api,
    checks_server,
    world,
)
