"""``make run``'s orchestrator end to end: real processes, the printed curl works, Ctrl-C
stops everything."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import socket
import sys
import time
from pathlib import Path

import httpx

from rcm_kit.db import database_url_for
from tests.conftest import drop_databases, free_port


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_run_starts_everything_prints_a_working_curl_and_stops_on_ctrl_c(
    server_url: str, redis_url: str, tmp_path: Path
) -> None:
    name = f"rcmt_{secrets.token_hex(4)}_run"
    ports = {
        k: free_port()
        for k in (
            "GATEWAY_PORT",
            "SWEEPS_API_PORT",
            "CONTRACTS_API_PORT",
            "DISPATCHER_HEALTH_PORT",
            "SMTP_PORT",
            "SMTP_SINK_WEB_PORT",
            "SANDBOX_PORT",
            "SWEEPS_SUPERVISOR_HEALTH_PORT",
            "SWEEPS_WORKER_HEALTH_PORT",
        )
    }
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SMTP_")},
        **{k: str(v) for k, v in ports.items()},
        "DATABASE_URL": database_url_for(server_url, name),
        "REDIS_URL": redis_url,
        "JWT_SECRET": "e2e-" + secrets.token_hex(20),
        "LOG_FORMAT": "json",
        "SMTP_SINK_DIR": str(tmp_path / "mail"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rcm_kit.devrun",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output: list[str] = []
    try:
        assert process.stdout is not None
        token = None
        deadline = time.monotonic() + 150
        while token is None and time.monotonic() < deadline:
            line = await asyncio.wait_for(process.stdout.readline(), timeout=150)
            if not line:
                break
            output.append(line.decode(errors="replace"))
            match = re.search(
                r"Try:\s+curl -s -H 'Authorization: Bearer ([^']+)' (\S+)", output[-1]
            )
            if match:
                token, url = match.group(1), match.group(2)
        assert token, "no curl printed:\n" + "".join(output[-40:])
        while "Ctrl-C stops everything" not in output[-1] and time.monotonic() < deadline:
            line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
            if not line:
                break
            output.append(line.decode(errors="replace"))
        assert url == f"http://127.0.0.1:{ports['GATEWAY_PORT']}/api/v1/payers"
        async with httpx.AsyncClient(timeout=10) as client:
            payers = await client.get(url, headers={"Authorization": f"Bearer {token}"})
            assert payers.status_code == 200, payers.text
            assert len(payers.json()["items"]) >= 8, "the demo tenant is seeded"
            health = await client.get(f"http://127.0.0.1:{ports['GATEWAY_PORT']}/api/v1/health")
            assert health.status_code == 200
            dispatcher = await client.get(
                f"http://127.0.0.1:{ports['DISPATCHER_HEALTH_PORT']}/healthz"
            )
            assert dispatcher.status_code == 200, dispatcher.text
            supervisor = await client.get(
                f"http://127.0.0.1:{ports['SWEEPS_SUPERVISOR_HEALTH_PORT']}/healthz"
            )
            assert supervisor.status_code == 200, supervisor.text
            worker = await client.get(
                f"http://127.0.0.1:{ports['SWEEPS_WORKER_HEALTH_PORT']}/healthz"
            )
            assert worker.status_code == 200, worker.text
            await _sweep_in_two_days(client, f"http://127.0.0.1:{ports['GATEWAY_PORT']}", token)
            inbox = await client.get(f"http://127.0.0.1:{ports['SMTP_SINK_WEB_PORT']}/")
            assert inbox.status_code == 200
            assert "Local inbox" in inbox.text
            await _check_demo_members(client, f"http://127.0.0.1:{ports['GATEWAY_PORT']}", token)
        assert any(
            f"Mail:     http://127.0.0.1:{ports['SMTP_SINK_WEB_PORT']}/" in line for line in output
        ), "the inbox is announced"
        # Drain output in the background so no process blocks on a full pipe.
        drain = asyncio.create_task(process.stdout.read())
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), timeout=30) is not None
        await drain
        for port in ports.values():
            assert not _listening(port), f"port {port} still listening after Ctrl-C"
    finally:
        if process.returncode is None:
            # Ctrl-C first, so honcho stops its children; SIGKILL alone would orphan them
            # (and they would hold the output pipe open).
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), timeout=30)
            except TimeoutError:
                process.kill()
                await process.wait()
        await drop_databases(server_url, name)


async def _check_demo_members(client: httpx.AsyncClient, gateway: str, token: str) -> None:
    """A newcomer's first check: a demo member through the gateway and the sandbox, one
    answered at once and one whose 271 comes back later through the inbound endpoint."""
    headers = {"Authorization": f"Bearer {token}"}
    outcomes = {}
    for rule in ("SBX-ACTIVE", "SBX-DELAYED"):
        found = await client.get(
            f"{gateway}/api/v1/members", params={"external_id": f"DEMO-{rule}"}, headers=headers
        )
        member_id = found.json()["items"][0]["member_id"]
        day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86_400))
        sent = await client.post(
            f"{gateway}/api/v1/eligibility/checks",
            json={"member_id": member_id, "service_date": day},
            headers=headers,
        )
        outcomes[rule] = sent
    active = outcomes["SBX-ACTIVE"]
    assert active.status_code == 201, active.text
    assert active.json()["status"] == "RECEIVED"
    assert active.json()["coverage_status"] == "ACTIVE"
    delayed = outcomes["SBX-DELAYED"]
    assert delayed.status_code == 202, delayed.text
    check_url = f"{gateway}/api/v1/eligibility/checks/{delayed.json()['check_id']}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        check = (await client.get(check_url, headers=headers)).json()
        if check["status"] != "SUBMITTED":
            break
        await asyncio.sleep(0.25)
    assert check["status"] == "RECEIVED", check


async def _sweep_in_two_days(client: httpx.AsyncClient, gateway: str, token: str) -> None:
    """An ad-hoc sweep of the visits two days out through the gateway runs to COMPLETED
    on the worker, the sandbox answering every member. (Tomorrow holds the demo's
    sandbox members, whose timeouts and retries would take minutes.)"""
    headers = {"Authorization": f"Bearer {token}"}
    created = await client.post(
        f"{gateway}/api/v1/eligibility/sweeps/runs",
        json={"name": "e2e in two days", "window_start_days": 2, "window_end_days": 2},
        headers=headers,
    )
    assert created.status_code == 202, created.text
    run_url = f"{gateway}/api/v1/eligibility/sweeps/runs/{created.json()['sweep_run_id']}"
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        run = (await client.get(run_url, headers=headers)).json()
        if run["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            break
        await asyncio.sleep(0.5)
    assert run["status"] == "COMPLETED", run
    counts = run["counts"]
    assert counts["total"] > 0
    assert counts["total"] == sum(
        counts[k] for k in ("queued", "submitted", "received", "failed", "skipped")
    )
    assert counts["queued"] == 0
