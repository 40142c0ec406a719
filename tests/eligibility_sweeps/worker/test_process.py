"""``sweeps-worker`` refuses to start misconfigured, naming the variable (exit 2)."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from eligibility_sweeps.worker.jobs import PROCESS
from eligibility_sweeps.worker.settings import WorkerSettings
from rcm_kit.settings import load_settings
from tests.eligibility_sweeps.worker.support import SWEEPS_WORKER, Workers


async def test_the_process_exits_2_naming_the_variable(workers: Workers) -> None:
    result = await asyncio.to_thread(
        subprocess.run,
        [str(SWEEPS_WORKER)],
        env=workers.env(INGEST_QUEUE_CONCURRENCY="0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "sweeps-worker: refusing to start" in result.stderr
    assert "INGEST_QUEUE_CONCURRENCY" in result.stderr


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"SWEEP_MEMBER_CONCURRENCY": "many"}, "SWEEP_MEMBER_CONCURRENCY"),
        ({"SWEEPS_WORKER_HEALTH_PORT": "70000"}, "SWEEPS_WORKER_HEALTH_PORT"),
        (
            {"SWEEP_JOB_TIMEOUT_SECONDS": "300", "SWEEP_CLAIM_TIMEOUT_SECONDS": "200"},
            "SWEEP_CLAIM_TIMEOUT_SECONDS: must be above SWEEP_JOB_TIMEOUT_SECONDS",
        ),
        (
            {"SWEEP_SEND_JOB_SECONDS": "60", "SWEEP_JOB_TIMEOUT_SECONDS": "100"},
            "SWEEP_JOB_TIMEOUT_SECONDS: must be above SWEEP_SEND_JOB_SECONDS",
        ),
        ({"SECRETS_KEY": "not-a-key"}, "SECRETS_KEY"),
    ],
)
def test_bad_settings_are_refused_naming_the_variable(
    workers: Workers,
    values: dict[str, str],
    named: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in workers.env(**values).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        load_settings(WorkerSettings, PROCESS)
    assert exited.value.code == 2
    assert named in capsys.readouterr().err


def test_lanes_divide_the_member_concurrency(workers: Workers) -> None:
    settings = workers.settings(SWEEP_MEMBER_CONCURRENCY=10, SWEEP_LANE_CONCURRENCY=4)
    assert settings.lanes == 3
    assert [settings.lane_width(lane) for lane in range(4)] == [4, 4, 2, 0]
    serial = workers.settings(SWEEP_MEMBER_CONCURRENCY=1)
    assert serial.lanes == 1
    assert serial.lane_width(0) == 1
