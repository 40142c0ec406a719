"""``/sandbox/requests``: what was received, filtered, bounded and cleared."""

from __future__ import annotations

import re
from datetime import date, datetime

from tests.clearinghouse_sandbox.factories import RECEIVER_ID, SENDER_ID, make_270
from tests.sandbox_support import SandboxClient, start_sandbox


async def test_a_record_describes_the_270(sandbox: SandboxClient) -> None:
    sent = make_270("SBX-ACTIVE", dependent=True, service_types=("30", "98"))

    response = await sandbox.send_core(
        sent.x12, fields={"PayloadID": "0b0d6f5e-1c44-4b3f-9f3a-8f8a4c7e2d11"}
    )
    assert response.status_code == 200

    [record] = await sandbox.requests()
    assert record == {
        "received_at": record["received_at"],
        "transport": "core-mime",
        "payload_id": "0b0d6f5e-1c44-4b3f-9f3a-8f8a4c7e2d11",
        "sender_id": SENDER_ID,
        "receiver_id": RECEIVER_ID,
        "subscriber_id": "SBX-ACTIVE",
        "dependent": True,
        "trace_number": sent.inquiry.trace_number,
        "interchange_control_number": sent.isa13,
        "group_control_number": sent.gs06,
        "transaction_control_number": sent.st02,
        "service_date": date(2026, 3, 2).isoformat(),
        "service_types": ["30", "98"],
        "rule": "SBX-ACTIVE",
        "answer": "271",
        "x12": sent.x12,
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", record["received_at"])


async def test_filters_by_subscriber_since_and_limit(sandbox: SandboxClient) -> None:
    for member_id in ("A1", "SBX-INACTIVE", "A1", "a1"):
        await sandbox.send_x12(make_270(member_id).x12)

    every = await sandbox.requests()
    assert [r["subscriber_id"] for r in every] == ["A1", "SBX-INACTIVE", "A1", "a1"]
    assert len(await sandbox.requests("a1")) == 3
    third = datetime.fromisoformat(every[2]["received_at"])
    assert [r["received_at"] for r in await sandbox.requests(since=third)] == [
        r["received_at"] for r in every[2:]
    ]
    assert await sandbox.requests(limit=2) == every[:2]


async def test_clear_forgets_requests(sandbox: SandboxClient) -> None:
    await sandbox.send_x12(make_270().x12)

    await sandbox.clear()

    assert await sandbox.requests() == []
    assert await sandbox.deliveries() == []


async def test_records_are_a_bounded_ring() -> None:
    server = await start_sandbox(record_limit=3)
    try:
        async with SandboxClient(server.url) as sandbox:
            for number in range(5):
                await sandbox.send_x12(make_270(f"M{number}").x12)
            assert [r["subscriber_id"] for r in await sandbox.requests()] == ["M2", "M3", "M4"]
    finally:
        await server.stop()


async def test_since_without_an_offset_is_utc(sandbox: SandboxClient) -> None:
    await sandbox.send_x12(make_270().x12)
    [record] = await sandbox.requests()
    bare = record["received_at"].removesuffix("Z")

    response = await sandbox.http.get("/sandbox/requests", params={"since": bare})

    assert response.json()["count"] == 1
