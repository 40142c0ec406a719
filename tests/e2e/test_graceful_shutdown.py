"""Graceful shutdown: every process kind, sent SIGTERM mid-work as a real OS process, stops
taking new work, finishes (or safely abandons) what it holds and exits 0 within its grace.

Where each kind is proved:

- ``gateway``: ``test_the_gateway_finishes_the_proxied_request_in_flight`` (here).
- ``sweeps-api``: ``test_sweeps_api_finishes_the_eligibility_check_in_flight`` (here).
- ``contracts-api``: ``test_contracts_api_finishes_the_send_test_in_flight`` (here).
- ``clearinghouse-sandbox``: ``test_the_sandbox_answers_the_slow_request_and_abandons_a_hang``
  (here); idle start and stop in ``tests/clearinghouse_sandbox/test_app.py::
  test_console_script_serves_and_stops_on_sigterm``.
- ``contracts-dispatcher``: ``test_the_dispatcher_finishes_the_mail_in_flight_and_claims_nothing
  _new`` (here, the process mid-tick); the same in-process in ``tests/contract_registry/
  test_dispatcher.py::test_stopping_mid_tick_finishes_the_mail_in_flight_and_claims_nothing_new``
  and health, metrics and exit 0 in ``::test_the_process_serves_health_and_metrics_mails_and_
  exits_0_on_sigterm``.
- ``sweeps-worker``: ``tests/eligibility_sweeps/worker/test_cancel_and_crash.py::
  test_sigterm_lets_members_in_flight_finish_and_another_worker_carries_on`` (SIGTERM
  mid-sweep: exit 0, no member left SUBMITTED, another worker completes the run with one
  270 per member).
- ``sweeps-supervisor``: ``tests/eligibility_sweeps/supervisor/test_process.py::
  test_the_process_fires_serves_health_and_metrics_and_exits_0_on_sigterm`` (after a
  firing; each firing is one transaction, so a stop mid-tick leaves it whole or undone).
- ``rcm migrate``: ``test_rcm_stops_on_sigterm_with_its_own_handler`` (here). A one-shot:
  on SIGTERM it exits 143 (rightly not 0: the job did not finish) through its own handler,
  which it needs as PID 1 of a container. Each tree of each
  database (master, then each tenant's reference, sweeps, contracts...) migrates in one
  transaction (``rcm_kit.migrations.apply``: ``engine.begin()`` around alembic, whose
  nested ``begin_transaction`` joins it), and PostgreSQL's DDL is transactional, so the
  tree in flight rolls back when the connection drops; a rerun carries on from there.

The HTTP processes (``rcm_kit.web.serve``) close their listening socket at once, let
requests in flight finish for up to their grace, then cancel what is left.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from clearinghouse_sandbox.app import SHUTDOWN_GRACE_SECONDS as SANDBOX_GRACE_SECONDS
from eligibility_sweeps.models import eligibility_check
from rcm_kit.clock import FixedClock
from rcm_kit.plugins import Plugin
from tests.clearinghouse_sandbox.factories import make_270
from tests.conftest import RunningServer, TenantFactory, auth, free_port, service_env
from tests.conftest import tenant_session as open_tenant_session
from tests.contract_registry.delivery_support import (
    MailCatcher,
    add_alert,
    add_contract,
    add_scope,
    deliveries,
    open_world,
)
from tests.eligibility_sweeps.checks_support import SECRETS_KEY, make_world
from tests.processes import STARTUP_SECONDS, read_log, spawn, until_ready
from tests.sandbox_support import SandboxClient, start_sandbox

SLOW_SECONDS = 2.5
"""How long the work in flight takes: ample time to see new connections refused first."""
STOP_SECONDS = 20
ALERTS = "/api/v1/admin/contracts/expiry-alerts"


@asynccontextmanager
async def running(
    script: str, port: int, log: Path, ready: str = "/healthz", **settings: Any
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """The console script ``script`` serving ``ready`` on ``port``; killed if a test left
    it running."""
    process = spawn(script, log, settings)
    try:
        await until_ready(process, f"http://127.0.0.1:{port}", ready, log)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            await asyncio.to_thread(process.wait, 10)


async def sigterm(
    process: subprocess.Popen[bytes], port: int, in_flight: asyncio.Task[Any]
) -> float:
    """SIGTERM ``process``; check that it refuses new connections while ``in_flight`` is
    still running. The time the signal was sent."""
    process.terminate()
    sent = time.monotonic()
    await refused(port)
    assert not in_flight.done(), "the request in flight ended before the listener closed"
    return sent


async def refused(port: int, within: float = 5.0) -> None:
    """Wait until a new connection to ``port`` is refused."""
    deadline = time.monotonic() + within
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            return
        writer.close()
        await writer.wait_closed()
        assert time.monotonic() < deadline, f"port {port} still accepts connections"
        await asyncio.sleep(0.02)


async def exit_code(process: subprocess.Popen[bytes], log: Path) -> int:
    try:
        return await asyncio.to_thread(process.wait, STOP_SECONDS)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"still running {STOP_SECONDS}s after SIGTERM:\n{read_log(log)}"
        ) from None


async def test_the_sandbox_answers_the_slow_request_and_abandons_a_hang(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "sandbox.log"
    settings = {"SANDBOX_PORT": port, "SANDBOX_LATENCY_MS": int(SLOW_SECONDS * 1000)}
    async with (
        running("clearinghouse-sandbox", port, log, **settings) as process,
        SandboxClient(f"http://127.0.0.1:{port}", timeout=30) as slow,
        SandboxClient(f"http://127.0.0.1:{port}", timeout=30) as hanging,
        SandboxClient(f"http://127.0.0.1:{port}") as control,
    ):
        answered = asyncio.create_task(slow.send_x12(make_270("SBX-ACTIVE").x12))
        hang = asyncio.create_task(hanging.send_x12(make_270("SBX-HANG").x12))
        await until(lambda: in_flight(control, 2), "both requests in flight")
        sent = await sigterm(process, port, answered)

        response = await answered
        code = await exit_code(process, log)
        took = time.monotonic() - sent
        abandoned = await asyncio.gather(hang, return_exceptions=True)

    assert response.status_code == 200, response.text
    assert "ST*271*" in response.text
    assert code == 0, read_log(log)
    # The hang (120 s) was cut at the grace, not waited for.
    assert took < SANDBOX_GRACE_SECONDS + 5
    [outcome] = abandoned
    assert isinstance(outcome, httpx.TransportError) or outcome.status_code >= 500, outcome
    assert "sandbox.stopped" in read_log(log)


async def in_flight(sandbox: SandboxClient, count: int) -> bool:
    """``count`` requests recorded and not answered yet."""
    return sum(1 for r in await sandbox.requests() if r["answer"] == "") >= count


async def until(condition: Any, what: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < deadline, f"not seen within {within}s: {what}"
        await asyncio.sleep(0.02)


async def test_sweeps_api_finishes_the_eligibility_check_in_flight(
    master_url: str, redis_url: str, make_tenant: TenantFactory, tmp_path: Path
) -> None:
    port, log = free_port(), tmp_path / "sweeps-api.log"
    settings = service_env(master_url, redis_url, SECRETS_KEY=SECRETS_KEY, SWEEPS_API_PORT=port)
    partner = await start_sandbox()
    try:
        async with (
            running("sweeps-api", port, log, ready="/readyz", **settings) as process,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as api,
            SandboxClient(partner.url) as sandbox,
        ):
            world = await make_world(make_tenant, api, sandbox)
            await world.add_partner()
            member_id = await world.member("SBX-ACTIVE")
            await sandbox.configure(latency_ms=int(SLOW_SECONDS * 1000))
            checking = asyncio.create_task(world.check(member_id))
            await until(lambda: in_flight(sandbox, 1), "the 270 at the partner")
            await sigterm(process, port, checking)

            response = await checking
            code = await exit_code(process, log)
            sent = await sandbox.requests("SBX-ACTIVE")
    finally:
        await partner.stop()

    assert response.status_code == 201, response.text
    assert response.json()["status"] == "RECEIVED"
    assert code == 0, read_log(log)
    async with open_tenant_session(world.tenant) as session:
        rows = (
            await session.execute(
                sa.select(eligibility_check.c.check_id, eligibility_check.c.status).where(
                    eligibility_check.c.member_id == member_id
                )
            )
        ).all()
    assert [(str(r.check_id), r.status) for r in rows] == [
        (response.json()["check_id"], "RECEIVED")
    ]
    assert [(r["trace_number"], r["answer"]) for r in sent] == [
        (response.json()["trace_number"], "271")
    ]


async def test_contracts_api_finishes_the_send_test_in_flight(
    master_url: str, redis_url: str, make_tenant: TenantFactory, tmp_path: Path
) -> None:
    port, log = free_port(), tmp_path / "contracts-api.log"
    smtp = MailCatcher().start()
    smtp.data_delay = SLOW_SECONDS
    settings = service_env(
        master_url,
        redis_url,
        CONTRACTS_API_PORT=port,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=smtp.port,
        SMTP_TIMEOUT_SECONDS=10,
    )
    try:
        tenant = await make_tenant()
        alert_id = await add_alert(tenant)
        async with (
            running("contracts-api", port, log, ready="/readyz", **settings) as process,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as api,
        ):
            headers = auth(tenant, "config.read,config.update")
            testing = asyncio.create_task(api.post(f"{ALERTS}/{alert_id}/test", headers=headers))
            assert await asyncio.to_thread(smtp.data_started.wait, 20), "no mail in flight"
            await sigterm(process, port, testing)

            response = await testing
            code = await exit_code(process, log)
    finally:
        smtp.stop()

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "SUCCESS", "matched_contracts": 0, "error": None}
    assert code == 0, read_log(log)
    assert len(smtp.for_alert(alert_id)) == 1
    assert [(d.kind, d.status) for d in await deliveries(tenant, alert_id)] == [("TEST", "SUCCESS")]


def slow_upstream(arrived: asyncio.Event, seen: list[str]) -> Starlette:
    """A service that takes ``SLOW_SECONDS`` to answer, and says when a request arrived."""

    async def answer(request: Request) -> JSONResponse:
        seen.append(request.url.path)
        arrived.set()
        await asyncio.sleep(SLOW_SECONDS)
        return JSONResponse({"items": [], "next_cursor": None})

    return Starlette(routes=[Route("/{path:path}", answer, methods=["GET"])])


async def test_the_gateway_finishes_the_proxied_request_in_flight(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "gateway.log"
    arrived, seen = asyncio.Event(), []
    upstream = await RunningServer(slow_upstream(arrived, seen)).start()
    settings = {
        "GATEWAY_PORT": port,
        "SWEEPS_API_URL": upstream.url,
        "CONTRACTS_API_URL": upstream.url,
    }
    try:
        async with (
            running("gateway", port, log, **settings) as process,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
        ):
            headers = {"X-Request-ID": "shutdown-test"}
            listing = asyncio.create_task(client.get("/api/v1/admin/contracts", headers=headers))
            await asyncio.wait_for(arrived.wait(), 20)
            await sigterm(process, port, listing)

            response = await listing
            code = await exit_code(process, log)
    finally:
        await upstream.stop()

    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_cursor": None}
    assert response.headers["x-request-id"] == "shutdown-test"
    assert code == 0, read_log(log)
    assert seen == ["/api/v1/admin/contracts"]


async def test_the_dispatcher_finishes_the_mail_in_flight_and_claims_nothing_new(
    server_url: str,
    redis_url: str,
    plugins: list[Plugin],
    migrations_dir: Path,
    tmp_path: Path,
) -> None:
    smtp = MailCatcher().start()
    smtp.data_delay = SLOW_SECONDS
    log = tmp_path / "dispatcher.log"
    try:
        async with open_world(server_url, redis_url, plugins, migrations_dir) as world:
            alerts: dict[UUID, Any] = {}
            for _ in range(2):
                tenant = await world.tenant()
                scope = await add_scope(tenant)
                await add_contract(tenant, scope, datetime.now(UTC).date() + timedelta(days=3))
                alerts[await add_alert(tenant)] = tenant
            settings = service_env(
                world.master_url,
                redis_url,
                SMTP_HOST="127.0.0.1",
                SMTP_PORT=smtp.port,
                SMTP_TIMEOUT_SECONDS=10,
                DISPATCHER_HEALTH_PORT=free_port(),
                CONTRACT_EXPIRY_TENANT_CONCURRENCY=1,
            )
            process = spawn("contracts-dispatcher", log, settings)
            try:
                started = await asyncio.to_thread(smtp.data_started.wait, STARTUP_SECONDS)
                assert started, f"no mail in flight:\n{read_log(log)}"
                process.terminate()
                code = await exit_code(process, log)
            finally:
                if process.poll() is None:
                    process.kill()
                    await asyncio.to_thread(process.wait, 10)

            assert code == 0, read_log(log)
            assert "dispatcher.stopped" in read_log(log)
            rows = {alert_id: await deliveries(t, alert_id) for alert_id, t in alerts.items()}
            assert sorted(len(r) for r in rows.values()) == [0, 1], "the second was not started"
            [[row]] = [r for r in rows.values() if r]
            assert (row.kind, row.status) == ("SCHEDULED", "SUCCESS"), "recorded, not SENDING"
            assert len(smtp.messages) == 1

            # Nothing lost: the next dispatcher sends the other alert, and only that one.
            smtp.data_delay = 0
            report = await world.dispatcher(smtp.port, FixedClock(datetime.now(UTC))).tick()
            assert report.sent == 1
            assert all(len(smtp.for_alert(alert_id)) == 1 for alert_id in alerts)
    finally:
        smtp.stop()


async def test_rcm_stops_on_sigterm_with_its_own_handler(tmp_path: Path) -> None:
    # As PID 1 of a container (a Kubernetes Job) a signal with no handler is ignored, so
    # `rcm` installs one: status 143 (128 + SIGTERM) from its own exit, not a kill (-15).
    # Its database never answers here, so `rcm migrate` is mid-connect when signalled.
    accepted = asyncio.Event()
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        accepted.set()

    silent = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    log = tmp_path / "rcm.log"
    env = {
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/rcm",
        "REDIS_URL": "redis://127.0.0.1:9/0",
    }
    process = spawn("rcm", log, env, "migrate")
    try:
        async with asyncio.timeout(30):
            await accepted.wait()
        process.terminate()
        code = await exit_code(process, log)
    finally:
        if process.poll() is None:
            process.kill()
        for writer in held:
            writer.close()
        silent.close()
        await silent.wait_closed()

    assert code == 128 + 15, read_log(log)
