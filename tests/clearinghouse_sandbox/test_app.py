"""The process: health, metrics, runtime config, settings from the environment, and
the console script starting and stopping cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from clearinghouse_sandbox.config import Settings
from rcm_kit.settings import load_settings
from tests.clearinghouse_sandbox.factories import make_270
from tests.conftest import free_port
from tests.sandbox_support import SandboxClient


async def test_health(sandbox: SandboxClient) -> None:
    response = await sandbox.http.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_metrics_count_requests_by_transport_and_rule(sandbox: SandboxClient) -> None:
    await sandbox.send_x12(make_270("SBX-INACTIVE").x12)

    text = (await sandbox.http.get("/metrics")).text

    assert 'sandbox_requests_total{rule="SBX-INACTIVE",transport="x12-http"}' in text


async def test_config_updates_partially_and_hides_secrets(sandbox: SandboxClient) -> None:
    await sandbox.configure(error_rate=0.25, password="pw", inbound_credential="s3cr3t-cred")
    config = await sandbox.configure(delivery="delayed", latency_ms="50-200")

    assert config["error_rate"] == 0.25
    assert config["delivery"] == "delayed"
    assert config["latency_ms"] == [50, 200]
    assert config["password_set"]
    assert config["inbound_credential_set"]
    assert not config["token_set"]
    assert "password" not in config
    assert "s3cr3t" not in str(config)
    assert await sandbox.config() == config


@pytest.mark.parametrize(
    "change",
    [
        {"error_rate": 2},
        {"latency_ms": [300, 100]},
        {"delivery": "sometimes"},
        {"inbound_url": "ftp://nowhere"},
        {"error_rate": None},
        {"unknown": 1},
    ],
)
async def test_config_refuses_bad_values(sandbox: SandboxClient, change: dict[str, object]) -> None:
    response = await sandbox.http.put("/sandbox/config", json=change)

    assert response.status_code == 422
    assert (await sandbox.config())["error_rate"] == 0


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_LATENCY_MS", "50-200")
    monkeypatch.setenv("SANDBOX_DELIVERY", "delayed")
    monkeypatch.setenv("SANDBOX_INBOUND_URL", "http://127.0.0.1:9/inbound")

    config = Settings().initial_config()

    assert config.latency_ms == (50, 200)
    assert config.delivery == "delayed"
    assert config.inbound_url == "http://127.0.0.1:9/inbound"


def test_a_bad_environment_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SANDBOX_LATENCY_MS", "fast")

    with pytest.raises(SystemExit) as exit_info:
        load_settings(Settings, "clearinghouse-sandbox")

    assert exit_info.value.code == 2
    assert "SANDBOX_LATENCY_MS" in capsys.readouterr().err


async def test_console_script_serves_and_stops_on_sigterm() -> None:
    port = free_port()
    script = Path(sys.executable).parent / "clearinghouse-sandbox"
    env = {**os.environ, "SANDBOX_PORT": str(port), "LOG_FORMAT": "console"}
    process = await asyncio.create_subprocess_exec(
        str(script), env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await _until_healthy(client)
            answer = await client.post("/x12", content=make_270().x12)
            assert answer.status_code == 200
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()
    log = stderr.decode()
    assert process.returncode == 0, log
    assert "sandbox.started" in log
    assert "sandbox.stopped" in log


async def _until_healthy(client: httpx.AsyncClient) -> None:
    for _ in range(400):
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.025)
    raise AssertionError("the sandbox did not start")
