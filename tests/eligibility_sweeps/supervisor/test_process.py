"""The ``sweeps-supervisor`` process itself: it fires on the real clock, serves /healthz and
/metrics on its own port, exits 0 promptly on SIGTERM, and refuses a bad setting with
exit 2 naming the variable."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from eligibility_sweeps.supervisor.config import SupervisorSettings
from eligibility_sweeps.supervisor.loop import HEALTH_FLOOR_SECONDS
from eligibility_sweeps.supervisor.main import PROCESS, health_app
from rcm_kit.clock import FixedClock
from rcm_kit.settings import load_settings
from tests.conftest import free_port
from tests.eligibility_sweeps.supervisor.support import Cluster, add_schedule, runs


async def test_the_process_fires_serves_health_and_metrics_and_exits_0_on_sigterm(
    cluster: Cluster, redis_url: str
) -> None:
    tenant = await cluster.tenant()
    # Armed a second ago on the real clock (a yearly cron: no later slot can overtake it
    # while the test runs): the first tick fires it.
    due = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    schedule_id = await add_schedule(tenant, "0 0 1 1 *", next_fire_at=due)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": cluster.master_url,
        "REDIS_URL": redis_url,
        "SWEEPS_SUPERVISOR_HEALTH_PORT": str(port),
        "SWEEP_SCHEDULER_TICK_SECONDS": "0.2",
        "LOG_FORMAT": "json",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "eligibility_sweeps.supervisor.main",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    health = await client.get("/healthz")
                    if health.json().get("last_tick_at") and await runs(tenant, schedule_id):
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "no tick and firing seen"
                await asyncio.sleep(0.1)
            assert health.status_code == 200
            assert health.json()["status"] == "ok"
            assert health.json()["enabled"] is True
            metrics = (await client.get("/metrics")).text
        assert 'sweep_scheduler_firings_total{outcome="run"} 1.0' in metrics
        assert "sweep_scheduler_armed_schedules 1.0" in metrics
        assert "sweep_scheduler_last_tick_timestamp_seconds" in metrics
        assert "sweep_scheduler_reconciled_runs_total 0.0" in metrics
        assert "sweep_scheduler_skips_total" in metrics
        [run] = await runs(tenant, schedule_id)
        assert (run.trigger, run.scheduled_for) == ("SCHEDULED", due)

        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert await asyncio.wait_for(process.wait(), timeout=15) == 0
        assert time.monotonic() - started < 5
        assert process.stderr is not None
        logs = (await process.stderr.read()).decode()
        assert "supervisor.stopped" in logs
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_bad_setting_refuses_to_start_with_exit_2_naming_the_variable() -> None:
    script = Path(sys.executable).parent / "sweeps-supervisor"
    result = await asyncio.create_subprocess_exec(
        str(script),
        env={**os.environ, "SWEEP_SCHEDULER_TICK_SECONDS": "0"},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(result.communicate(), timeout=60)
    assert result.returncode == 2, stderr
    text = stderr.decode()
    assert "sweeps-supervisor: refusing to start" in text
    assert "SWEEP_SCHEDULER_TICK_SECONDS: Input should be greater than or equal to 0.1" in text


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SWEEP_MISSED_FIRE_GRACE_SECONDS", "soon", "Input should be a valid integer"),
        ("SWEEP_MISSED_FIRE_GRACE_SECONDS", "59", "Input should be greater than or equal to 60"),
        ("SWEEPS_SUPERVISOR_HEALTH_PORT", "70000", "Input should be less than or equal to 65535"),
        ("SWEEP_SCHEDULER_ENABLED", "perhaps", "Input should be a valid boolean"),
        (
            "SWEEP_SCHEDULER_RESYNC_SECONDS",
            "1",
            "must not be below SWEEP_SCHEDULER_TICK_SECONDS",
        ),
    ],
)
def test_each_bad_setting_is_named(
    name: str, value: str, message: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv(name, value)
    if name == "SWEEP_SCHEDULER_RESYNC_SECONDS":
        monkeypatch.setenv("SWEEP_SCHEDULER_TICK_SECONDS", "2")
    with pytest.raises(SystemExit) as exited:
        load_settings(SupervisorSettings, PROCESS)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("sweeps-supervisor: refusing to start")
    assert name in err
    assert message in err


def test_the_defaults_are_the_documented_ones() -> None:
    settings = SupervisorSettings()
    assert settings.SWEEP_SCHEDULER_ENABLED is True
    assert settings.SWEEPS_SUPERVISOR_HEALTH_PORT == 9105
    assert settings.SWEEP_MISSED_FIRE_GRACE_SECONDS == 3600
    assert (settings.SWEEP_SCHEDULER_RESYNC_SECONDS, settings.SWEEP_RECONCILE_SECONDS) == (60, 30)


async def test_healthz_is_503_only_when_enabled_and_ticks_have_stopped(cluster: Cluster) -> None:
    enabled = cluster.supervisor(FixedClock())
    disabled = cluster.supervisor(FixedClock(), SWEEP_SCHEDULER_ENABLED=False)
    await enabled.tick()
    assert enabled.health()[0] is True
    for supervisor in (enabled, disabled):
        supervisor._alive_since = time.monotonic() - HEALTH_FLOOR_SECONDS - 1

    for supervisor, status in ((enabled, 503), (disabled, 200)):
        transport = httpx.ASGITransport(app=health_app(supervisor))
        async with httpx.AsyncClient(transport=transport, base_url="http://supervisor") as client:
            response = await client.get("/healthz")
        assert response.status_code == status
        assert response.json()["status"] == ("stale" if status == 503 else "ok")
