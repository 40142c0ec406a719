"""Late answers: 271s, 999s and TA1s a trading partner delivers after the real-time
reply, through ``POST /eligibility/inbound`` (JWT) and ``/inbound/{partner}`` (the
partner's inbound credential), against real PostgreSQL, the real sweeps API and the
clearinghouse sandbox over HTTP.

A check awaiting its 271 is made with the sandbox in delayed mode and a long delay, so
its own delivery never comes during the test; the answers posted here are the
sandbox's genuine answers to the check's own 270, asked for again in inline mode.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import pytest
import sqlalchemy as sa

from eligibility_sweeps.models import eligibility_check, inbound_file
from rcm_kit.provision import set_status
from rcm_kit.tenancy import TenantStatus
from tests.conftest import TenantFactory, auth, tenant_session
from tests.eligibility_sweeps.checks_support import *  # noqa: F403 (fixtures)
from tests.eligibility_sweeps.checks_support import READ, WRITE, World, make_world
from tests.eligibility_sweeps.factories import add_payer
from tests.sandbox_support import SandboxClient

INBOUND = "/api/v1/eligibility/inbound"
INBOUND_PERMISSION = "eligibility.inbound"
NEVER = 3600.0
"""A delayed delivery that does not come while the test runs (cancelled at shutdown)."""
SETTLE_TIMEOUT = 5.0


async def submitted(world: World, subscriber_id: str = "SBX-ACTIVE") -> dict[str, Any]:
    """A check whose 270 was accepted and whose 271 is awaited (202 SUBMITTED), with its
    X12; the sandbox is left in inline mode."""
    await world.sandbox.configure(delivery="delayed", delay_seconds=NEVER, inbound_url=None)
    check = await world.checked(subscriber_id, status=202)
    assert check["status"] == "SUBMITTED"
    await world.sandbox.configure(delivery="inline")
    return await world.get(check["check_id"], x12=True)


async def answer(sandbox: SandboxClient, check: dict[str, Any], rule: str | None = None) -> str:
    """The sandbox's answer to the check's own 270, with its subscriber id replaced by
    ``rule`` to choose another answer (a 999 or TA1 still names the 270's numbers)."""
    request = check["request_x12"]
    if rule is not None:
        request = request.replace("*MI*SBX-ACTIVE~", f"*MI*{rule}~")
    response = await sandbox.send_x12(request)
    assert response.status_code == 200, response.text
    return response.text


def basic(credential: str, username: str = "anyone") -> dict[str, str]:
    token = base64.b64encode(f"{username}:{credential}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def with_token(world: World, *perms: str) -> dict[str, str]:
    return auth(world.tenant, list(perms or [INBOUND_PERMISSION]))


def both_routes(world: World) -> tuple[tuple[dict[str, str], str | None], ...]:
    """(headers, partner in the path): the token route, then the credential route."""
    return (
        (with_token(world), None),
        (bearer(world.partner["inbound_credential"]), world.partner_id),
    )


async def delayed_to_us(world: World, checks_server: Any, delivery: str) -> None:
    """The sandbox delivers its delayed answers 0.2 s later to our credential route."""
    await world.sandbox.configure(
        delivery=delivery,
        delay_seconds=0.2,
        inbound_url=f"{checks_server.url}{INBOUND}/{world.partner_id}",
        inbound_credential=world.partner["inbound_credential"],
    )


async def deliver(
    world: World,
    body: str | bytes,
    *,
    headers: dict[str, str],
    partner_id: str | None = None,
    content_type: str = "application/edi-x12",
) -> httpx.Response:
    url = INBOUND if partner_id is None else f"{INBOUND}/{partner_id}"
    content = body.encode() if isinstance(body, str) else body
    return await world.api.post(
        url, content=content, headers={"Content-Type": content_type, **headers}
    )


async def deliver_core(
    world: World, x12: str, *, headers: dict[str, str], as_file: bool = False
) -> httpx.Response:
    """A CAQH CORE real-time envelope around ``x12``, as a partner posts a 271 later."""
    fields = {
        "PayloadType": "X12_271_Response_005010X279A1",
        "ProcessingMode": "RealTime",
        "PayloadID": str(uuid.uuid4()),
        "TimeStamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "SenderID": "SANDBOXCH",
        "ReceiverID": "RCMSENDER",
        "CORERuleVersion": "2.2.0",
        "ErrorCode": "Success",
        "ErrorMessage": "",
    }
    files: list[tuple[str, tuple[str | None, str | bytes] | tuple[str, bytes, str]]] = [
        (name, (None, value)) for name, value in fields.items()
    ]
    payload = ("271.x12", x12.encode(), "application/edi-x12") if as_file else (None, x12)
    files.append(("Payload", payload))
    return await world.api.post(f"{INBOUND}/{world.partner_id}", files=files, headers=headers)


async def settled(world: World, check_id: str) -> dict[str, Any]:
    """Poll the check until it leaves SUBMITTED."""
    deadline = asyncio.get_running_loop().time() + SETTLE_TIMEOUT
    while True:
        check = await world.get(check_id, x12=True)
        if check["status"] != "SUBMITTED":
            return check
        assert asyncio.get_running_loop().time() < deadline, f"still SUBMITTED: {check}"
        await asyncio.sleep(0.05)


async def answered_deliveries(sandbox: SandboxClient, trace_number: str) -> list[dict[str, Any]]:
    """The sandbox's delivery attempts for a trace number, once the last one has its
    HTTP status (the check settles just before our answer reaches the sandbox)."""
    deadline = asyncio.get_running_loop().time() + SETTLE_TIMEOUT
    while True:
        found = await sandbox.deliveries(trace_number)
        if found and (found[-1]["status_code"] is not None or found[-1]["error"]):
            return found
        assert asyncio.get_running_loop().time() < deadline, f"no answered delivery: {found}"
        await asyncio.sleep(0.02)


async def check_row(world: World, check_id: str) -> Any:
    async with tenant_session(world.tenant) as session:
        query = sa.select(eligibility_check).where(eligibility_check.c.check_id == check_id)
        return (await session.execute(query)).one()


async def kept_files(world: World) -> list[Any]:
    async with tenant_session(world.tenant) as session:
        query = sa.select(inbound_file).order_by(inbound_file.c.received_at)
        return list((await session.execute(query)).all())


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def other_trace(x12: str, trace_number: str) -> tuple[str, str]:
    """``x12`` echoing a trace number no check has."""
    unknown = uuid.uuid4().hex.upper()
    return x12.replace(f"TRN*2*{trace_number}*", f"TRN*2*{unknown}*"), unknown


async def second_route(world: World, sender_id: str, receiver_id: str) -> World:
    """Another payer of the same tenant, routed through another partner at the sandbox
    whose ISA ids are ``sender_id`` (ours) and ``receiver_id`` (theirs)."""
    code = f"SBX{uuid.uuid4().hex[:6].upper()}"
    async with tenant_session(world.tenant) as session:
        payer_id = await add_payer(session, code, "Second Health Plan")
    other = World(world.tenant, world.api, world.sandbox, payer_id, code)
    await other.add_partner(sender_id=sender_id, receiver_id=receiver_id)
    return other


# Delayed delivery, end to end: the sandbox posts the 271 to our endpoint itself.


@pytest.mark.parametrize("transport", ["x12-http", "core-mime"])
async def test_a_delayed_271_is_delivered_and_settles_the_check(
    make_tenant: TenantFactory,
    api: httpx.AsyncClient,
    sandbox: SandboxClient,
    checks_server: Any,
    transport: str,
) -> None:
    world = await make_world(make_tenant, api, sandbox)
    await world.add_partner(transport)
    await delayed_to_us(world, checks_server, delivery="delayed")
    check = await world.checked("SBX-ACTIVE", status=202)
    assert check["status"] == "SUBMITTED"
    assert check["received_at"] is None
    assert check["plan"] is None

    done = await settled(world, check["check_id"])
    assert done["status"] == "RECEIVED", done
    assert done["coverage_status"] == "ACTIVE"
    assert done["plan"]["name"] == "SANDBOX GOLD PPO"
    assert {line["info_code"] for line in done["benefits"]} >= {"1", "B", "C"}
    assert done["response_kind"] == "271"
    assert done["received_at"] >= done["submitted_at"]
    attempts = await answered_deliveries(sandbox, check["trace_number"])
    assert [(a["status_code"], a["transport"]) for a in attempts] == [(202, transport)]
    assert '"outcome":"MATCHED"' in attempts[0]["response_excerpt"]
    (kept,) = await kept_files(world)
    assert (kept.outcome, kept.kind, str(kept.trading_partner_id)) == (
        "MATCHED",
        "271",
        world.partner_id,
    )
    assert kept.check_ids == [UUID(check["check_id"])]
    media = "multipart/form-data" if transport == "core-mime" else "application/edi-x12"
    assert kept.content_type.startswith(media)
    assert kept.body == done["response_x12"]


async def test_sbx_delayed_is_delivered_later_even_in_inline_mode(
    world: World, checks_server: Any
) -> None:
    await delayed_to_us(world, checks_server, delivery="inline")
    inline = await world.checked("SBX-ACTIVE", status=201)
    assert inline["status"] == "RECEIVED"
    later = await world.checked("SBX-DELAYED", status=202)
    assert later["status"] == "SUBMITTED"
    done = await settled(world, later["check_id"])
    assert (done["status"], done["coverage_status"]) == ("RECEIVED", "ACTIVE")
    assert done["plan"]["name"] == "SANDBOX GOLD PPO"
    attempts = await answered_deliveries(world.sandbox, later["trace_number"])
    assert [a["status_code"] for a in attempts] == [202]
    assert await world.sandbox.deliveries(inline["trace_number"]) == []


# The JWT route: matched once, by trace number.


async def test_a_271_by_token_settles_its_check_once(world: World) -> None:
    check = await submitted(world)
    x12 = await answer(world.sandbox, check)
    headers = with_token(world)

    # Twice at once, as a partner retrying a slow delivery does: one file, one settlement.
    both = await asyncio.gather(*(deliver(world, x12, headers=headers) for _ in range(2)))
    assert [r.status_code for r in both] == [202, 202], [r.text for r in both]
    result, echo = sorted((r.json() for r in both), key=lambda r: r["duplicate"])
    assert (result["kind"], result["outcome"], result["duplicate"]) == ("271", "MATCHED", False)
    assert echo == {**result, "duplicate": True}
    assert result["check_ids"] == [check["check_id"]]
    done = await world.get(check["check_id"], x12=True)
    assert (done["status"], done["coverage_status"]) == ("RECEIVED", "ACTIVE")
    assert done["plan"]["name"] == "SANDBOX GOLD PPO"
    assert done["response_x12"] == x12
    before = await check_row(world, check["check_id"])

    again = await deliver(world, x12, headers=headers)
    assert again.status_code == 202, again.text
    assert again.json() == {**result, "duplicate": True}
    assert (await check_row(world, check["check_id"])).updated_at == before.updated_at

    # Another 271 for the same 270, saying something else, once the check has its answer.
    different = await answer(world.sandbox, check, "SBX-INACTIVE")
    late = await deliver(world, different, headers=headers)
    assert late.status_code == 202, late.text
    assert late.json()["duplicate"] is False
    assert "already RECEIVED: unchanged" in late.json()["detail"]
    after = await check_row(world, check["check_id"])
    assert after.updated_at == before.updated_at
    assert (after.coverage_status, after.response_x12) == ("ACTIVE", x12)
    assert [f.body for f in await kept_files(world)] == [x12, different]


async def test_the_token_route_needs_eligibility_inbound(world: World) -> None:
    check = await submitted(world)
    x12 = await answer(world.sandbox, check)
    refused = await deliver(world, x12, headers=with_token(world, READ, WRITE))
    assert_problem(refused, 403)
    anonymous = await deliver(world, x12, headers={})
    assert_problem(anonymous, 401)
    # The partner's inbound credential is not a JWT.
    credential = await deliver(world, x12, headers=bearer(world.partner["inbound_credential"]))
    assert_problem(credential, 401)
    assert (await world.get(check["check_id"]))["status"] == "SUBMITTED"
    assert await kept_files(world) == []


# The credential route.


async def test_the_inbound_credential_works_as_basic_password_or_bearer(world: World) -> None:
    credential = world.partner["inbound_credential"]
    for headers in (basic(credential), basic(credential, username=""), bearer(credential)):
        check = await submitted(world)
        response = await deliver(
            world, await answer(world.sandbox, check), headers=headers, partner_id=world.partner_id
        )
        assert response.status_code == 202, (headers, response.text)
        assert response.json()["check_ids"] == [check["check_id"]]
        assert (await world.get(check["check_id"]))["status"] == "RECEIVED"


async def test_wrong_credentials_answer_401_and_store_nothing(
    world: World, make_tenant: TenantFactory
) -> None:
    check = await submitted(world)
    x12 = await answer(world.sandbox, check)
    own = world.partner["inbound_credential"]
    other_partner = (await second_route(world, "RCMSENDER", "SANDBOXCH")).partner
    elsewhere = await make_world(make_tenant, world.api, world.sandbox)
    await elsewhere.add_partner()
    forged = own[: own.rindex("_") + 1] + base64.urlsafe_b64encode(bytes(32)).decode().rstrip("=")
    cases: dict[str, dict[str, str]] = {
        "none": {},
        "wrong credential": bearer(forged),
        "wrong Basic password": basic(forged),
        "another partner's credential": bearer(other_partner["inbound_credential"]),
        "another tenant's credential": basic(elsewhere.partner["inbound_credential"]),
        "credential as the Basic user name": {
            "Authorization": "Basic " + base64.b64encode(f"{own}:".encode()).decode()
        },
        "Basic that is not base64": {"Authorization": "Basic !!not-base64!!"},
        "Basic without a colon": {
            "Authorization": "Basic " + base64.b64encode(own.encode()).decode()
        },
        "unknown scheme": {"Authorization": f"Token {own}"},
        "empty bearer": {"Authorization": "Bearer"},
        "a JWT": with_token(world),
    }
    for label, headers in cases.items():
        response = await deliver(world, x12, headers=headers, partner_id=world.partner_id)
        assert_problem(response, 401)
        assert response.headers.get("www-authenticate", "").startswith("Basic"), label
    # The right credential with another partner (or no partner) in the path.
    for partner_id in (other_partner["trading_partner_id"], str(uuid.uuid4())):
        response = await deliver(world, x12, headers=bearer(own), partner_id=partner_id)
        assert_problem(response, 401)
        assert "www-authenticate" in response.headers
    assert (await world.get(check["check_id"]))["status"] == "SUBMITTED"
    assert await kept_files(world) == []


async def test_a_suspended_tenant_answers_403_to_its_partner(
    world: World, master_engine: Any
) -> None:
    check = await submitted(world)
    x12 = await answer(world.sandbox, check)
    await set_status(master_engine, world.tenant.slug, TenantStatus.SUSPENDED)
    try:
        own = bearer(world.partner["inbound_credential"])
        body = assert_problem(
            await deliver(world, x12, headers=own, partner_id=world.partner_id), 403
        )
        assert "suspended" in body["detail"]
        # Without the credential nothing is told about the tenant: the usual 401.
        forged = world.partner["inbound_credential"][:-4] + "AAAA"
        response = await deliver(world, x12, headers=bearer(forged), partner_id=world.partner_id)
        assert_problem(response, 401)
    finally:
        await set_status(master_engine, world.tenant.slug, TenantStatus.ACTIVE)
    assert (await world.get(check["check_id"]))["status"] == "SUBMITTED"


# 999 and TA1 delivered later: matched by control number, with their partner.


@pytest.mark.parametrize(
    ("rule", "kind", "error"),
    [("SBX-999", "999", "999 rejected: "), ("SBX-TA1", "TA1", "TA1 rejected: 006 ")],
)
async def test_a_rejecting_ack_delivered_later_fails_its_check(
    world: World, rule: str, kind: str, error: str
) -> None:
    # A second partner with other ISA ids and its own counter: each of its checks has
    # the same control number as the first partner's check made just before it.
    second = await second_route(world, sender_id="RCMOTHER", receiver_id="OTHERCH")
    token = with_token(world)
    # (headers, partner in the path) for our partner's ack, then for the second's.
    routes: dict[str, tuple[tuple[dict[str, str], str | None], ...]] = {
        "credential": (
            (bearer(world.partner["inbound_credential"]), world.partner_id),
            (bearer(second.partner["inbound_credential"]), second.partner_id),
        ),
        # No partner in the path: the ack's ISA sender and receiver ids tell whose it is.
        "token": ((token, None), (token, None)),
    }
    for route, ((headers, partner_id), (their_headers, their_partner_id)) in routes.items():
        ours, theirs = await submitted(world), await submitted(second)
        assert ours["control_number"] == theirs["control_number"]
        ack = await answer(world.sandbox, ours, rule)
        assert "*SANDBOXCH      *ZZ*RCMSENDER      *" in ack

        response = await deliver(world, ack, headers=headers, partner_id=partner_id)
        assert response.status_code == 202, (route, response.text)
        assert (response.json()["kind"], response.json()["check_ids"]) == (
            kind,
            [ours["check_id"]],
        )
        failed = await world.get(ours["check_id"], x12=True)
        assert failed["status"] == "FAILED", failed
        assert failed["error"].startswith(error), failed["error"]
        assert (failed["response_kind"], failed["response_x12"]) == (kind, ack)
        assert (await second.get(theirs["check_id"]))["status"] == "SUBMITTED", route

        their_ack = await answer(world.sandbox, theirs, rule)
        assert "*OTHERCH        *ZZ*RCMOTHER       *" in their_ack
        response = await deliver(
            world, their_ack, headers=their_headers, partner_id=their_partner_id
        )
        assert response.status_code == 202, (route, response.text)
        assert response.json()["check_ids"] == [theirs["check_id"]]
        assert (await second.get(theirs["check_id"]))["error"].startswith(error)


async def test_an_ack_naming_no_check_is_unmatched(world: World) -> None:
    check = await submitted(world)
    ack = await answer(world.sandbox, check, "SBX-TA1")
    # The same TA1 as if the partner had answered an interchange we never sent.
    stray = ack.replace(f"TA1*{check['control_number']:09d}*", "TA1*000000777*")
    assert stray != ack
    for headers, partner_id in both_routes(world):
        response = await deliver(world, stray, headers=headers, partner_id=partner_id)
        body = assert_problem(response, 422)
        assert body["outcome"] == "UNMATCHED"
        assert "control number 777" in body["detail"]
    # An ack from ISA ids no partner of ours has matches nothing on the token route.
    foreign = ack.replace("SANDBOXCH      ", "SOMEONEELSE    ")
    body = assert_problem(await deliver(world, foreign, headers=with_token(world)), 422)
    assert body["outcome"] == "UNMATCHED"
    assert (await world.get(check["check_id"]))["status"] == "SUBMITTED"


# CORE MIME as well as raw X12.


async def test_a_core_envelope_is_read_like_raw_x12(world: World) -> None:
    credential = world.partner["inbound_credential"]
    for as_file in (False, True):
        check = await submitted(world)
        x12 = await answer(world.sandbox, check)
        response = await deliver_core(world, x12, headers=basic(credential), as_file=as_file)
        assert response.status_code == 202, response.text
        assert response.json()["check_ids"] == [check["check_id"]]
        done = await world.get(check["check_id"], x12=True)
        assert (done["status"], done["response_x12"]) == ("RECEIVED", x12)
        # The same 271 raw: the same file, whatever envelope it came in.
        raw = await deliver(world, x12, headers=bearer(credential), partner_id=world.partner_id)
        assert raw.status_code == 202, raw.text
        assert raw.json()["duplicate"] is True
    # Up to 5 MB is accepted whichever way it comes: a CORE Payload over 1 MB too.
    check = await submitted(world)
    large = _padded(await answer(world.sandbox, check), 2 * 1024 * 1024)
    response = await deliver_core(world, large, headers=bearer(credential))
    assert response.status_code == 202, response.text
    assert (await world.get(check["check_id"]))["status"] == "RECEIVED"
    kept = await kept_files(world)
    assert [f.content_type.split(";")[0] for f in kept] == ["multipart/form-data"] * 3


def _padded(x12: str, size: int) -> str:
    """``x12`` grown past ``size`` characters by MSG segments in the benefit loop."""
    segments = x12.split("~\n")
    last_eb = max(i for i, s in enumerate(segments) if s.startswith("EB*"))
    line = "MSG*" + "PLEASE CALL THE PAYER FOR DETAILS " * 7
    count = size // len(line) + 1
    padded = segments[: last_eb + 1] + [line] * count + segments[last_eb + 1 :]
    se = next(i for i, s in enumerate(padded) if s.startswith("SE*"))
    st = next(i for i, s in enumerate(padded) if s.startswith("ST*"))
    control = padded[se].split("*")[2]
    padded[se] = f"SE*{se - st + 1}*{control}"
    return "~\n".join(padded)


# What cannot be matched or read is kept and answered 422; too big is 413.


async def test_an_unmatched_271_is_kept_and_answered_422(world: World) -> None:
    check = await submitted(world)
    x12 = await answer(world.sandbox, check)
    stray, unknown = other_trace(x12, check["trace_number"])
    for headers, partner_id in both_routes(world):
        response = await deliver(world, stray, headers=headers, partner_id=partner_id)
        body = assert_problem(response, 422)
        assert body["outcome"] == "UNMATCHED"
        assert body["kind"] == "271"
        assert body["detail"] == f"No check has trace number {unknown}"
        assert body["check_ids"] == []
    (kept,) = await kept_files(world)
    assert (kept.outcome, kept.body, kept.check_ids) == ("UNMATCHED", stray, [])
    assert kept.trading_partner_id is None  # the first delivery, by token
    assert str(kept.inbound_file_id) == body["inbound_file_id"]
    assert (await world.get(check["check_id"]))["status"] == "SUBMITTED"


async def test_unreadable_bodies_are_kept_and_answered_422(world: World) -> None:
    check = await submitted(world)
    x12 = await answer(world.sandbox, check)
    credential = bearer(world.partner["inbound_credential"])
    cases: list[tuple[str | bytes, str, str]] = [
        ("Hello, this is not X12", "application/edi-x12", "Not an X12 271, 999 or TA1"),
        (x12, "application/json", "Content-Type application/json is not X12"),
        (b"\xff\xfe\x00binary", "application/octet-stream", "Not an X12 271, 999 or TA1"),
        (check["request_x12"], "application/edi-x12", "This is a 270 request"),
    ]
    for body, content_type, why in cases:
        response = await deliver(
            world, body, headers=credential, partner_id=world.partner_id, content_type=content_type
        )
        problem = assert_problem(response, 422)
        assert problem["outcome"] == "UNREADABLE", problem
        assert why in problem["detail"], problem
    envelope = await world.api.post(
        f"{INBOUND}/{world.partner_id}",
        files=[("PayloadType", (None, "X12_271_Response_005010X279A1"))],
        headers=credential,
    )
    assert "Payload" in assert_problem(envelope, 422)["detail"]
    kept = await kept_files(world)
    assert [f.outcome for f in kept] == ["UNREADABLE"] * 5
    assert kept[1].body == x12
    assert kept[1].content_type == "application/json"
    assert (await world.get(check["check_id"]))["status"] == "SUBMITTED"


async def test_a_body_over_5_mb_is_refused_413(world: World) -> None:
    check = await submitted(world)
    x12 = await answer(world.sandbox, check)
    huge = _padded(x12, 5 * 1024 * 1024)
    for headers, partner_id in both_routes(world):
        response = await deliver(world, huge, headers=headers, partner_id=partner_id)
        assert_problem(response, 413)
    assert await kept_files(world) == []
    assert (await world.get(check["check_id"]))["status"] == "SUBMITTED"


# Tenants never see each other's checks.


async def test_a_late_271_never_reaches_another_tenants_check(
    world: World, make_tenant: TenantFactory
) -> None:
    other = await make_world(make_tenant, world.api, world.sandbox)
    await other.add_partner()
    theirs = await submitted(other)
    x12 = await answer(world.sandbox, theirs)
    for headers, partner_id in reversed(both_routes(world)):
        response = await deliver(world, x12, headers=headers, partner_id=partner_id)
        body = assert_problem(response, 422)
        assert body["outcome"] == "UNMATCHED"
        assert theirs["check_id"] not in str(body)
    ack = await answer(world.sandbox, theirs, "SBX-999")
    body = assert_problem(await deliver(world, ack, headers=with_token(world)), 422)
    assert body["outcome"] == "UNMATCHED"
    assert (await other.get(theirs["check_id"]))["status"] == "SUBMITTED"
    assert await kept_files(other) == []
