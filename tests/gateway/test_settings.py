from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from tests.gateway.conftest import gateway_settings


def _start(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.app"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GATEWAY_PORT", "abc"),
        ("SWEEPS_API_URL", "127.0.0.1:8001"),
        ("CONTRACTS_API_URL", "http://127.0.0.1:8002/api/v1"),
        ("GATEWAY_TIMEOUT_SECONDS", "-1"),
    ],
)
def test_a_bad_value_refuses_to_start_naming_the_variable(name: str, value: str) -> None:
    result = _start(**{name: value})
    assert result.returncode == 2, result.stderr
    assert "gateway: refusing to start" in result.stderr
    assert name in result.stderr


def test_upstream_urls_are_normalised_and_origins_split() -> None:
    settings = gateway_settings(
        SWEEPS_API_URL="http://sweeps:8001/",
        CORS_ORIGINS=" https://a.example.com, http://localhost:5173/ ,",
    )
    assert settings.SWEEPS_API_URL == "http://sweeps:8001"
    assert settings.cors_origins == ["https://a.example.com", "http://localhost:5173"]
    assert gateway_settings().cors_origins == []
    assert gateway_settings().GATEWAY_MAX_BODY_BYTES > 5 * 1024 * 1024


def test_upstream_urls_default_to_the_services_ports_on_this_machine() -> None:
    settings = gateway_settings(SWEEPS_API_PORT=9101, CONTRACTS_API_PORT=9102)
    assert settings.upstream_urls == {
        "sweeps": "http://127.0.0.1:9101",
        "contracts": "http://127.0.0.1:9102",
    }
    given = gateway_settings(SWEEPS_API_PORT=9101, SWEEPS_API_URL="http://sweeps.internal:80")
    assert given.SWEEPS_API_URL == "http://sweeps.internal:80"


def test_the_slow_timeout_is_not_shorter_than_the_ordinary_one() -> None:
    with pytest.raises(ValidationError, match="GATEWAY_SLOW_TIMEOUT_SECONDS"):
        gateway_settings(GATEWAY_TIMEOUT_SECONDS=20, GATEWAY_SLOW_TIMEOUT_SECONDS=5)
    with pytest.raises(ValidationError, match="not an origin"):
        gateway_settings(CORS_ORIGINS="spa.example.com")
