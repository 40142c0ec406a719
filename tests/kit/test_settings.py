"""A process refuses to start on a bad setting, with a message naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rcm_kit.settings import ApiSettings

GOOD = {
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/rcm",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "JWT_SECRET": "s" * 40,
}


def _start(module: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in GOOD and not k.startswith("JWT_")}
    return subprocess.run(
        [sys.executable, "-m", module],
        env={**clean, **GOOD, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("module", "variable", "value", "reason"),
    [
        ("eligibility_sweeps.app", "TENANT_POOL_SIZE", "lots", "valid integer"),
        ("eligibility_sweeps.app", "MAX_TENANT_ENGINES", "0", "greater than or equal to 1"),
        ("contract_registry.app", "LOG_FORMAT", "xml", "'json' or 'console'"),
        ("contract_registry.app", "DATABASE_URL", "mysql://db/rcm", "PostgreSQL URL"),
        ("contract_registry.app", "REDIS_URL", "localhost:6379", "redis://"),
        ("eligibility_sweeps.app", "SWEEPS_API_PORT", "99999", "less than or equal to 65535"),
        ("contract_registry.app", "JWT_SECRET", "short", "at least 32 characters"),
    ],
)
def test_bad_value_refuses_to_start_naming_the_variable(
    module: str, variable: str, value: str, reason: str
) -> None:
    result = _start(module, **{variable: value})
    assert result.returncode == 2, result.stderr
    assert "refusing to start" in result.stderr
    assert variable in result.stderr
    assert reason in result.stderr
    assert "Traceback" not in result.stderr
    if variable == "JWT_SECRET":
        assert value not in result.stderr  # secrets are never echoed


def test_no_way_to_verify_tokens_refuses_to_start() -> None:
    result = _start("contract_registry.app", JWT_SECRET="")
    assert result.returncode == 2
    assert "JWT_SECRET or JWT_JWKS_URL" in result.stderr


def test_an_empty_token_setting_counts_as_not_set() -> None:
    # KEY= in a ConfigMap or env file means "not set": an empty issuer must not demand
    # iss == "" of every token, and an empty secret must not stand in for a real one.
    settings = ApiSettings(**{**GOOD, "JWT_ISSUER": "", "JWT_AUDIENCE": " ", "JWT_JWKS_URL": ""})

    assert (settings.JWT_ISSUER, settings.JWT_AUDIENCE, settings.JWT_JWKS_URL) == (None, None, None)
    with pytest.raises(ValueError, match="JWT_SECRET or JWT_JWKS_URL"):
        ApiSettings(**{**GOOD, "JWT_SECRET": ""})
