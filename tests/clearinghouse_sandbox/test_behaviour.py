"""Latency, error rate, hanging and authentication, measured over real sockets."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from eligibility_sweeps.x12.read271 import CoverageStatus, parse_271
from tests.clearinghouse_sandbox.factories import TRANSPORTS, make_270, payload_of, send
from tests.sandbox_support import SandboxClient

transports = pytest.mark.parametrize("transport", TRANSPORTS)


async def timed(sandbox: SandboxClient, transport: str, member_id: str = "W1") -> float:
    started = time.perf_counter()
    response = await send(sandbox, transport, make_270(member_id).x12)
    assert response.status_code == 200
    return time.perf_counter() - started


@transports
async def test_fixed_latency_delays_every_answer(sandbox: SandboxClient, transport: str) -> None:
    await sandbox.configure(latency_ms=120)

    elapsed = [await timed(sandbox, transport) for _ in range(2)]

    assert all(0.11 <= seconds < 2 for seconds in elapsed), elapsed


async def test_latency_range_stays_within_its_bounds(sandbox: SandboxClient) -> None:
    await sandbox.configure(latency_ms=[50, 150])
    assert (await sandbox.config())["latency_ms"] == [50, 150]

    elapsed = await asyncio.gather(*(timed(sandbox, "x12-http") for _ in range(8)))

    assert all(0.045 <= seconds < 2 for seconds in elapsed), elapsed


@transports
async def test_error_rate_one_answers_every_request_503(
    sandbox: SandboxClient, transport: str
) -> None:
    await sandbox.configure(error_rate=1.0)

    statuses = [(await send(sandbox, transport, make_270().x12)).status_code for _ in range(5)]

    assert statuses == [503] * 5
    records = await sandbox.requests()
    assert [(r["rule"], r["answer"]) for r in records] == [("SBX-ACTIVE", "HTTP 503")] * 5


@transports
async def test_hang_outlasts_the_client_and_blocks_no_one(
    sandbox: SandboxClient, transport: str
) -> None:
    await sandbox.configure(hang_seconds=30)
    hung = asyncio.create_task(send(sandbox, transport, make_270("SBX-HANG").x12, timeout=0.3))

    started = time.perf_counter()
    other = await send(sandbox, transport, make_270().x12)
    assert other.status_code == 200
    assert time.perf_counter() - started < 5  # far below hang_seconds

    with pytest.raises(httpx.ReadTimeout):
        await hung
    [record] = await sandbox.requests("SBX-HANG")
    assert record["rule"] == "SBX-HANG"
    # The sandbox notices the client left and stops waiting.
    for _ in range(100):
        if (await sandbox.requests("SBX-HANG"))[0]["answer"]:
            break
        await asyncio.sleep(0.02)
    assert (await sandbox.requests("SBX-HANG"))[0]["answer"] == "HTTP 499"


@transports
async def test_hang_answers_active_after_hang_seconds(
    sandbox: SandboxClient, transport: str
) -> None:
    await sandbox.configure(hang_seconds=0.2)

    started = time.perf_counter()
    response = await send(sandbox, transport, make_270("SBX-HANG").x12)

    assert time.perf_counter() - started >= 0.19
    assert (
        parse_271(payload_of(response, transport, "271")).coverage_status is CoverageStatus.ACTIVE
    )


@transports
async def test_any_credentials_pass_by_default(sandbox: SandboxClient, transport: str) -> None:
    for auth in (None, httpx.BasicAuth("who", "ever")):
        response = await send(sandbox, transport, make_270().x12, auth=auth)
        assert response.status_code == 200


async def test_configured_basic_credentials_are_required(sandbox: SandboxClient) -> None:
    await sandbox.configure(username="tp-user", password="tp-pass")
    x12 = make_270().x12

    wrong = await sandbox.send_x12(x12, auth=httpx.BasicAuth("tp-user", "nope"))
    none = await sandbox.send_x12(x12)
    right = await sandbox.send_x12(x12, auth=httpx.BasicAuth("tp-user", "tp-pass"))

    assert (wrong.status_code, none.status_code, right.status_code) == (401, 401, 200)
    assert wrong.text == "Unauthorized: sandbox rejects these credentials"
    assert [r["answer"] for r in await sandbox.requests()] == ["HTTP 401", "HTTP 401", "271"]


async def test_configured_token_is_required(sandbox: SandboxClient) -> None:
    await sandbox.configure(token="t0ken")
    x12 = make_270().x12

    wrong = await sandbox.send_x12(x12, headers={"Authorization": "Bearer other"})
    right = await sandbox.send_x12(x12, headers={"Authorization": "Bearer t0ken"})

    assert (wrong.status_code, right.status_code) == (401, 200)


async def test_core_username_and_password_fields_authenticate(sandbox: SandboxClient) -> None:
    await sandbox.configure(username="tp-user", password="tp-pass")
    x12 = make_270().x12

    wrong = await sandbox.send_core(x12, fields={"UserName": "tp-user", "Password": "x"})
    right = await sandbox.send_core(x12, fields={"UserName": "tp-user", "Password": "tp-pass"})
    header = await sandbox.send_core(x12, auth=httpx.BasicAuth("tp-user", "tp-pass"))

    assert (wrong.status_code, right.status_code, header.status_code) == (401, 200, 200)
