"""The operator's view of late answers: every inbound file is listed with its outcome,
unmatched ones can be found and read, and reading a body is audited."""

from __future__ import annotations

import httpx

from tests.conftest import auth
from tests.eligibility_sweeps.checks_support import READ, World
from tests.eligibility_sweeps.test_members_api import audit_rows

FILES = "/api/v1/eligibility/inbound-files"
INBOUND = "/api/v1/eligibility/inbound"


async def _post(world: World, body: str) -> httpx.Response:
    return await world.api.post(
        INBOUND,
        content=body.encode(),
        headers={
            **auth(world.tenant, "eligibility.inbound"),
            "Content-Type": "application/edi-x12",
        },
    )


async def test_unmatched_and_unreadable_files_are_listed_for_the_operator(world: World) -> None:
    check = await world.checked("SBX-ACTIVE", status=201)
    answer = (await world.get(check["check_id"], x12=True))["response_x12"]
    stray = answer.replace(check["trace_number"], "0" * 32)
    assert (await _post(world, stray)).status_code == 422
    assert (await _post(world, "hello, not X12")).status_code == 422

    headers = auth(world.tenant, READ)
    listed = (await world.api.get(FILES, headers=headers)).json()["items"]
    assert [(f["outcome"], f["kind"]) for f in listed] == [
        ("UNREADABLE", "unknown"),
        ("UNMATCHED", "271"),
    ]
    assert "body" not in listed[0]
    unmatched = await world.api.get(FILES, params={"outcome": "UNMATCHED"}, headers=headers)
    [only] = unmatched.json()["items"]
    assert only["detail"] == f"No check has trace number {'0' * 32}"

    one = await world.api.get(f"{FILES}/{only['inbound_file_id']}", headers=headers)
    assert one.status_code == 200
    assert one.json()["body"] == stray
    rows = await audit_rows(world.tenant, "inbound_file")
    assert [(r.action, str(r.entity_id)) for r in rows] == [("READ", only["inbound_file_id"])]


async def test_an_unknown_file_is_404_and_reading_needs_eligibility_read(world: World) -> None:
    missing = await world.api.get(
        f"{FILES}/00000000-0000-0000-0000-000000000000", headers=auth(world.tenant, READ)
    )
    assert missing.status_code == 404
    denied = await world.api.get(FILES, headers=auth(world.tenant, "config.read"))
    assert denied.status_code == 403
