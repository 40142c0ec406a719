"""Delayed delivery to a real receiving server, in both formats, with retries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from eligibility_sweeps.x12.read271 import CoverageStatus, parse_271
from eligibility_sweeps.x12.read_ack import AckStatus, parse_999
from tests.clearinghouse_sandbox.factories import make_270
from tests.conftest import RunningServer
from tests.sandbox_support import (
    SandboxClient,
    core_request_fields,
    parse_core,
    parse_multipart,
    start_sandbox,
)

CREDENTIAL = "inbound-cred-123"


@dataclass
class Inbox:
    """What the receiving server got; it answers 500 to the first ``fail_first`` posts."""

    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail_first: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> Starlette:
        async def inbound(request: Request) -> PlainTextResponse:
            self.received.append((dict(request.headers), await request.body()))
            if len(self.received) <= self.fail_first:
                return PlainTextResponse("not now", status_code=500)
            self.arrived.set()
            return PlainTextResponse("accepted", status_code=202)

        return Starlette(routes=[Route("/inbound", inbound, methods=["POST"])])

    async def first_accepted(self) -> tuple[dict[str, str], bytes]:
        async with asyncio.timeout(5):
            await self.arrived.wait()
        return self.received[-1]


@pytest.fixture
async def inbox() -> AsyncIterator[tuple[Inbox, str]]:
    box = Inbox()
    server = await RunningServer(box.app()).start()
    yield box, f"{server.url}/inbound"
    await server.stop()


async def delayed(sandbox: SandboxClient, url: str) -> None:
    await sandbox.configure(
        delivery="delayed", delay_seconds=0.1, inbound_url=url, inbound_credential=CREDENTIAL
    )


async def test_x12_http_answers_202_then_posts_the_271(
    sandbox: SandboxClient, inbox: tuple[Inbox, str]
) -> None:
    box, url = inbox
    await delayed(sandbox, url)
    sent = make_270()

    response = await sandbox.send_x12(sent.x12)
    assert (response.status_code, response.content) == (202, b"")

    headers, body = await box.first_accepted()
    assert headers["authorization"] == f"Bearer {CREDENTIAL}"
    assert headers["content-type"] == "application/edi-x12"
    answer = parse_271(body.decode())
    assert answer.trace_numbers == (sent.inquiry.trace_number,)
    assert answer.coverage_status is CoverageStatus.ACTIVE
    [attempt] = await sandbox.wait_for_deliveries(1)
    assert attempt["trace_number"] == sent.inquiry.trace_number
    assert (attempt["attempt"], attempt["status_code"], attempt["delivered"]) == (1, 202, True)
    assert attempt["response_excerpt"] == "accepted"
    assert [r["answer"] for r in await sandbox.requests()] == ["accepted"]


async def test_core_mime_answers_an_accepted_999_then_posts_a_core_envelope(
    sandbox: SandboxClient, inbox: tuple[Inbox, str]
) -> None:
    box, url = inbox
    await delayed(sandbox, url)
    sent = make_270("SBX-PLANENDS")
    request = core_request_fields(sent.x12)

    response = await sandbox.send_core(sent.x12, fields={"PayloadID": request["PayloadID"]})

    immediate = parse_core(response)
    assert immediate["PayloadType"] == "X12_999_Response_005010X231A1"
    assert immediate["ErrorCode"] == "Success"
    ack = parse_999(immediate["Payload"])
    assert ack.status is AckStatus.ACCEPTED
    assert ack.acknowledged_group_control_number == sent.gs06
    assert [(t.control_number, t.status) for t in ack.transactions] == [
        (sent.st02, AckStatus.ACCEPTED)
    ]

    headers, body = await box.first_accepted()
    assert headers["authorization"] == f"Bearer {CREDENTIAL}"
    fields = parse_multipart(headers["content-type"], body)
    assert fields["PayloadType"] == "X12_271_Response_005010X279A1"
    assert fields["PayloadID"] == request["PayloadID"]
    assert (fields["SenderID"], fields["ReceiverID"]) == (
        request["ReceiverID"],
        request["SenderID"],
    )
    assert fields["CORERuleVersion"] == "2.2.0"
    assert fields["Password"] == CREDENTIAL
    answer = parse_271(fields["Payload"])
    assert answer.trace_numbers == (sent.inquiry.trace_number,)
    assert answer.plan_end is not None


async def test_the_delayed_rule_delivers_later_even_inline(
    sandbox: SandboxClient, inbox: tuple[Inbox, str]
) -> None:
    box, url = inbox
    await sandbox.configure(delay_seconds=0.1, inbound_url=url, inbound_credential=CREDENTIAL)
    sent = make_270("SBX-DELAYED")

    response = await sandbox.send_x12(sent.x12)

    assert response.status_code == 202
    _, body = await box.first_accepted()
    assert parse_271(body.decode()).trace_numbers == (sent.inquiry.trace_number,)


async def test_999_and_ta1_stay_immediate_when_delivery_is_delayed(
    sandbox: SandboxClient, inbox: tuple[Inbox, str]
) -> None:
    _, url = inbox
    await delayed(sandbox, url)

    reject = await sandbox.send_x12(make_270("SBX-999").x12)
    ta1 = await sandbox.send_x12(make_270("SBX-TA1").x12)

    assert (reject.status_code, ta1.status_code) == (200, 200)
    assert "IK5*R" in reject.text
    assert "TA1*" in ta1.text


async def test_a_failed_post_is_retried_and_every_attempt_recorded(
    sandbox: SandboxClient, inbox: tuple[Inbox, str]
) -> None:
    box, url = inbox
    box.fail_first = 1
    await delayed(sandbox, url)
    sent = make_270()

    await sandbox.send_x12(sent.x12)

    await box.first_accepted()
    attempts = await sandbox.wait_for_deliveries(2, trace_number=sent.inquiry.trace_number)
    assert [(a["attempt"], a["status_code"], a["delivered"]) for a in attempts] == [
        (1, 500, False),
        (2, 202, True),
    ]
    assert attempts[0]["response_excerpt"] == "not now"


async def test_shutdown_cancels_pending_deliveries_and_records_missing_url() -> None:
    server = await start_sandbox(delivery="delayed", delay_seconds=0)
    async with SandboxClient(server.url) as sandbox:
        await sandbox.send_x12(make_270().x12)
        [attempt] = await sandbox.wait_for_deliveries(1)
        assert attempt["error"] == "no inbound_url configured"
        assert attempt["status_code"] is None
        await sandbox.configure(delay_seconds=60)
        await sandbox.send_x12(make_270().x12)

    started = time.perf_counter()
    await server.stop()
    assert time.perf_counter() - started < 2


async def test_a_credential_file_written_after_start_is_sent_from_then_on(
    inbox: tuple[Inbox, str], tmp_path: Path
) -> None:
    # compose writes the demo tenant's inbound token once the tenant exists, after the
    # sandbox has started (SANDBOX_INBOUND_CREDENTIAL_FILE).
    box, url = inbox
    token_file = tmp_path / "inbound-token"
    server = await start_sandbox(
        credential_file=token_file, delivery="delayed", delay_seconds=0.05, inbound_url=url
    )
    try:
        async with SandboxClient(server.url) as sandbox:
            await sandbox.send_x12(make_270().x12)
            before, _ = await box.first_accepted()
            token_file.write_text(f"{CREDENTIAL}\n")
            box.arrived.clear()
            await sandbox.send_x12(make_270().x12)
            after, _ = await box.first_accepted()
    finally:
        await server.stop()

    assert "authorization" not in before
    assert after["authorization"] == f"Bearer {CREDENTIAL}"
