"""The senders against a stand-in partner on a real socket: the wire format each
transport owes the partner, and the reason, retryability and breaker weight of every
way a partner can fail to answer."""

from __future__ import annotations

import asyncio
import base64
import re
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiohttp import web

from eligibility_sweeps.models.trading_partner import AuthType, Transport
from eligibility_sweeps.transport import (
    CoreMimeSender,
    Reply,
    TransportFailure,
    X12HttpSender,
    sender_for,
)
from tests.conftest import free_port
from tests.eligibility_sweeps.transport.conftest import PartnerServer, core_response, endpoint
from tests.eligibility_sweeps.x12.samples import sample

X270 = sample("lfh_270_subscriber.x12")
X271 = sample("lfh_271_subscriber_active.x12")
X999 = sample("ims_999_accepted.x12")
PAYLOAD_ID = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
SECRET = "s3cr3t-Pa55word"


def core_success(payload: str = X271, payload_type: str = "X12_271_Response_005010X279A1"):
    async def handler(request: web.Request) -> web.StreamResponse:
        return core_response(
            {
                "PayloadType": payload_type,
                "ProcessingMode": "RealTime",
                "PayloadID": "3a1e0f2c-0000-4000-8000-000000000271",
                "TimeStamp": "2026-11-22T10:00:00Z",
                "SenderID": "ACMECH",
                "ReceiverID": "SUBMITTER01",
                "CORERuleVersion": "2.2.0",
                "Payload": payload,
                "ErrorCode": "Success",
                "ErrorMessage": "",
            }
        )

    return handler


def answer(status: int, body: bytes | str = b"", content_type: str = "text/plain"):
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=body, content_type=content_type)

    return handler


async def send(server: PartnerServer, client: httpx.AsyncClient, **kwargs: object) -> Reply:
    partner = endpoint(server.url, **kwargs)  # type: ignore[arg-type]
    return await sender_for(partner, client).send(partner, X270, payload_id=PAYLOAD_ID)


async def failure(
    server: PartnerServer, client: httpx.AsyncClient, **kwargs: object
) -> TransportFailure:
    with pytest.raises(TransportFailure) as caught:
        await send(server, client, **kwargs)
    return caught.value


# core-mime


async def test_core_mime_posts_the_caqh_envelope_with_credentials_in_it(
    partner_server: PartnerServer, client: httpx.AsyncClient
) -> None:
    partner_server.handler = core_success()
    before = datetime.now(UTC).replace(microsecond=0)

    reply = await send(partner_server, client)

    after = datetime.now(UTC)
    [received] = partner_server.received
    assert received.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert "Authorization" not in received.headers
    assert [name for name, *_ in received.parts] == [
        "PayloadType",
        "ProcessingMode",
        "PayloadID",
        "TimeStamp",
        "UserName",
        "Password",
        "SenderID",
        "ReceiverID",
        "CORERuleVersion",
        "Payload",
    ]
    fields = received.fields()
    stamp = fields.pop("TimeStamp")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)
    assert before <= datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) <= after
    assert fields == {
        "PayloadType": "X12_270_Request_005010X279A1",
        "ProcessingMode": "RealTime",
        "PayloadID": PAYLOAD_ID,
        "UserName": "acme-user",
        "Password": SECRET,
        "SenderID": "SUBMITTER01",
        "ReceiverID": "ACMECH",
        "CORERuleVersion": "2.2.0",
        "Payload": X270,
    }
    # Plain form fields, as in the rule's examples: no filename on any part.
    assert all(filename is None for _, _, filename, _ in received.parts)
    assert reply.body == X271
    assert reply.payload_type == "X12_271_Response_005010X279A1"
    assert reply.payload_id == "3a1e0f2c-0000-4000-8000-000000000271"
    assert reply.status_code == 200
    assert reply.elapsed_ms > 0


async def test_core_mime_timestamp_comes_from_the_injected_clock(
    partner_server: PartnerServer, client: httpx.AsyncClient
) -> None:
    partner_server.handler = core_success()
    partner = endpoint(partner_server.url)
    fixed = datetime(2026, 3, 8, 1, 59, 58, tzinfo=UTC) - timedelta(hours=5)

    await sender_for(partner, client, clock=lambda: fixed).send(partner, X270, payload_id="p1")

    assert partner_server.received[0].fields()["TimeStamp"] == "2026-03-07T20:59:58Z"


async def test_core_mime_bearer_partner_gets_a_header_and_no_envelope_credentials(
    partner_server: PartnerServer, client: httpx.AsyncClient
) -> None:
    partner_server.handler = core_success()

    await send(partner_server, client, auth_type=AuthType.BEARER, secret="tok-123")

    [received] = partner_server.received
    assert received.headers["Authorization"] == "Bearer tok-123"
    assert "UserName" not in received.fields()
    assert "Password" not in received.fields()


async def test_core_mime_partner_without_auth_gets_no_credentials(
    partner_server: PartnerServer, client: httpx.AsyncClient
) -> None:
    partner_server.handler = core_success()

    await send(partner_server, client, auth_type=AuthType.NONE)

    [received] = partner_server.received
    assert "Authorization" not in received.headers
    assert {"UserName", "Password"}.isdisjoint(received.fields())


async def test_core_mime_reads_a_hand_written_envelope_and_keeps_the_payload_bytes(
    partner_server: PartnerServer, client: httpx.AsyncClient
) -> None:
    """A response written the way the rule's examples are, not by aiohttp: quoted
    boundary, no part headers but the disposition, a payload with CRLF line breaks."""
    payload = X999.replace("\n", "\r\n")
    parts = {
        "PayloadType": "X12_999_Response_005010X231A1",
        "ProcessingMode": "RealTime",
        "PayloadID": "e51d4fae-7dec-11d0-a765-00a0c91e6bf6",
        "ErrorCode": "Success",
        "ErrorMessage": "None",
        "Payload": payload,
    }
    body = (
        "".join(
            f'--XbCY\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in parts.items()
        )
        + "--XbCY--\r\n"
    )

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=body.encode(), headers={"Content-Type": 'multipart/form-data; boundary="XbCY"'}
        )

    partner_server.handler = handler

    reply = await send(partner_server, client)

    assert reply.body == payload
    assert reply.payload_type == "X12_999_Response_005010X231A1"


async def test_core_mime_success_without_payload_means_answer_later(
    partner_server: PartnerServer, client: httpx.AsyncClient
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return core_response(
            {"PayloadType": "X12_271_Response_005010X279A1", "ErrorCode": "Success"}
        )

    partner_server.handler = handler

    reply = await send(partner_server, client)

    assert reply == Reply(
        body="",
        status_code=200,
        elapsed_ms=reply.elapsed_ms,
        payload_type="X12_271_Response_005010X279A1",
    )


@pytest.mark.parametrize(
    ("code", "message", "retryable"),
    [
        ("UnAuthorized", "The UserName/Password combination is not valid.", False),
        ("PayloadIDRequired", "PayloadID  is\n required", False),
        ("VersionMismatch", "CORERuleVersion 2.2.0 is not supported", False),
        ("ServerBusy", "Server cannot process the request now; retry later", True),
        ("Receiver", "The payer system is unavailable", True),
    ],
)
async def test_core_error_code_becomes_the_reason(
    partner_server: PartnerServer,
    client: httpx.AsyncClient,
    code: str,
    message: str,
    retryable: bool,
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return core_response(
            {"PayloadType": "CoreEnvelopeError", "ErrorCode": code, "ErrorMessage": message}
        )

    partner_server.handler = handler

    failed = await failure(partner_server, client)

    assert failed.reason == f"CORE error {code}: {' '.join(message.split())}"
    assert failed.retryable is retryable
    assert failed.breaker is False


async def test_core_http_error_quotes_the_envelope_error(
    partner_server: PartnerServer, client: httpx.AsyncClient
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return core_response(
            {"ErrorCode": "UnAuthorized", "ErrorMessage": "Bad password"}, status=401
        )

    partner_server.handler = handler

    failed = await failure(partner_server, client)

    assert (
        failed.reason == "HTTP 401 from Acme Clearinghouse: CORE error UnAuthorized: Bad password"
    )
    assert (failed.retryable, failed.breaker, failed.status_code) == (False, False, 401)


async def test_core_answer_that_is_not_an_envelope_fails_clearly(
    partner_server: PartnerServer, client: httpx.AsyncClient
) -> None:
    partner_server.handler = answer(200, "<html>Maintenance</html>", "text/html")

    failed = await failure(partner_server, client)

    assert failed.reason == (
        "Unreadable CORE response from Acme Clearinghouse (HTTP 200): "
        "not a multipart envelope (text/html)"
    )
    assert (failed.retryable, failed.breaker) == (False, False)


# x12-http


async def test_x12_http_posts_raw_x12_with_basic_auth(
    partner_server: PartnerServer, client: httpx.AsyncClient
) -> None:
    partner_server.handler = answer(200, X271, "application/edi-x12")

    reply = await send(partner_server, client, transport=Transport.X12_HTTP)

    [received] = partner_server.received
    assert received.headers["Content-Type"] == "application/edi-x12"
    assert (
        received.headers["Authorization"]
        == "Basic " + base64.b64encode(f"acme-user:{SECRET}".encode()).decode()
    )
    assert received.body.decode() == X270
    assert reply == Reply(body=X271, status_code=200, elapsed_ms=reply.elapsed_ms)


async def test_x12_http_bearer(partner_server: PartnerServer, client: httpx.AsyncClient) -> None:
    partner_server.handler = answer(200, X271, "application/edi-x12")

    await send(partner_server, client, transport=Transport.X12_HTTP, auth_type=AuthType.BEARER)

    assert partner_server.received[0].headers["Authorization"] == f"Bearer {SECRET}"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [(202, "", ""), (204, "", ""), (202, "Accepted for processing", ""), (202, X999, X999)],
)
async def test_x12_http_accepted_means_answer_later(
    partner_server: PartnerServer, client: httpx.AsyncClient, status: int, body: str, expected: str
) -> None:
    partner_server.handler = answer(status, body)

    reply = await send(partner_server, client, transport=Transport.X12_HTTP)

    assert (reply.body, reply.status_code) == (expected, status)


async def test_x12_http_empty_200_is_a_retryable_failure(
    partner_server: PartnerServer, client: httpx.AsyncClient
) -> None:
    partner_server.handler = answer(200, "")

    failed = await failure(partner_server, client, transport=Transport.X12_HTTP)

    assert failed.reason == "Empty answer from Acme Clearinghouse (HTTP 200)"
    assert (failed.retryable, failed.breaker) == (True, False)


# HTTP errors, for both transports


@pytest.mark.parametrize("transport", list(Transport))
async def test_http_401_quotes_the_partner_and_is_final(
    partner_server: PartnerServer, client: httpx.AsyncClient, transport: Transport
) -> None:
    partner_server.handler = answer(
        401, "  Unauthorized:\n\n   invalid   credentials \t for user acme-user\n"
    )

    failed = await failure(partner_server, client, transport=transport)

    assert failed.reason == (
        "HTTP 401 from Acme Clearinghouse: Unauthorized: invalid credentials for user acme-user"
    )
    assert (failed.retryable, failed.breaker, failed.status_code) == (False, False, 401)


async def test_http_error_without_body_uses_the_reason_phrase(
    partner_server: PartnerServer, client: httpx.AsyncClient
) -> None:
    partner_server.handler = answer(403)

    failed = await failure(partner_server, client, transport=Transport.X12_HTTP)

    assert failed.reason == "HTTP 403 from Acme Clearinghouse: Forbidden"


async def test_http_error_excerpt_is_about_200_characters(
    partner_server: PartnerServer, client: httpx.AsyncClient
) -> None:
    partner_server.handler = answer(400, "word " * 1000)

    failed = await failure(partner_server, client, transport=Transport.X12_HTTP)

    prefix = "HTTP 400 from Acme Clearinghouse: "
    assert failed.reason.startswith(prefix + "word word")
    assert failed.reason.endswith("...")
    assert len(failed.reason) <= len(prefix) + 203


@pytest.mark.parametrize(
    ("status", "retryable", "breaker"),
    [(503, True, True), (500, True, True), (429, True, False), (404, False, False)],
)
async def test_http_status_decides_retry_and_breaker(
    partner_server: PartnerServer,
    client: httpx.AsyncClient,
    status: int,
    retryable: bool,
    breaker: bool,
) -> None:
    partner_server.handler = answer(status, "try again later")

    failed = await failure(partner_server, client, transport=Transport.X12_HTTP)

    assert failed.reason == f"HTTP {status} from Acme Clearinghouse: try again later"
    assert (failed.retryable, failed.breaker) == (retryable, breaker)


async def test_redirects_are_not_followed(
    partner_server: PartnerServer, client: httpx.AsyncClient
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("http://127.0.0.1:9/elsewhere")

    partner_server.handler = handler

    failed = await failure(partner_server, client, transport=Transport.X12_HTTP)

    assert failed.reason.startswith(
        "HTTP 302 from Acme Clearinghouse: redirected to http://127.0.0.1:9/elsewhere"
    )
    assert failed.retryable is False
    assert len(partner_server.received) == 1


# No usable answer at all


async def test_timeout_when_the_partner_is_too_slow(
    partner_server: PartnerServer, client: httpx.AsyncClient
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(5)
        return web.Response(text=X271)

    partner_server.handler = handler
    started = time.monotonic()

    failed = await failure(partner_server, client, timeout_seconds=1)

    assert time.monotonic() - started < 2
    assert failed.reason == "Timeout after 1 s"
    assert (failed.retryable, failed.breaker) == (True, True)


async def test_overall_deadline_stops_a_trickling_partner(
    partner_server: PartnerServer, client: httpx.AsyncClient
) -> None:
    """A byte every 0.2 s never trips the 1 s read timeout; the deadline still holds."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/edi-x12"})
        await response.prepare(request)
        for char in X271:
            await response.write(char.encode())
            await asyncio.sleep(0.2)
        return response

    partner_server.handler = handler
    started = time.monotonic()

    failed = await failure(partner_server, client, transport=Transport.X12_HTTP, timeout_seconds=1)

    assert time.monotonic() - started < 1.5
    assert failed.reason == "Timeout after 1 s"
    assert (failed.retryable, failed.breaker) == (True, True)


async def test_connection_refused(client: httpx.AsyncClient) -> None:
    partner = endpoint(f"http://127.0.0.1:{free_port()}/core")

    with pytest.raises(TransportFailure) as caught:
        await CoreMimeSender(client).send(partner, X270, payload_id=PAYLOAD_ID)

    assert caught.value.reason == (
        "Connection failed to Acme Clearinghouse: All connection attempts failed "
        "(Connection refused)"
    )
    assert (caught.value.retryable, caught.value.breaker) == (True, True)


@pytest.mark.parametrize("chunked", [False, True])
async def test_oversized_answer_fails_without_reading_it_all(
    partner_server: PartnerServer, client: httpx.AsyncClient, chunked: bool
) -> None:
    chunk = b"~" * 65536
    chunks = 6 * 16 + 1  # just over 6 MB

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/edi-x12"})
        if not chunked:
            response.content_length = len(chunk) * chunks
        await response.prepare(request)
        for _ in range(chunks):
            await response.write(chunk)
        return response

    partner_server.handler = handler

    failed = await failure(partner_server, client, transport=Transport.X12_HTTP)

    assert failed.reason == "Response from Acme Clearinghouse is larger than 5 MB"
    assert (failed.retryable, failed.breaker) == (False, False)


# Secrets


@pytest.mark.parametrize("transport", list(Transport))
async def test_secrets_never_reach_a_reason_or_a_repr(
    partner_server: PartnerServer, client: httpx.AsyncClient, transport: Transport
) -> None:
    """A partner that echoes what we sent must not make us repeat it."""

    async def handler(request: web.Request) -> web.StreamResponse:
        received = partner_server.received[-1]
        echoed = (
            f"{'x' * 180} rejected {request.headers.get('Authorization', '')} "
            f"password={received.fields().get('Password', '')}"
        )
        return web.Response(status=401, text=echoed)

    partner_server.handler = handler
    basic = base64.b64encode(f"acme-user:{SECRET}".encode()).decode()

    failed = await failure(partner_server, client, transport=transport)

    # The excerpt cut falls inside the echoed credential: not even part of it shows.
    for shown in (failed.reason, repr(failed), str(failed)):
        assert SECRET[:6] not in shown
        assert basic[:6] not in shown
    partner = endpoint(partner_server.url, transport=transport)
    assert SECRET not in repr(partner)
    assert SECRET not in str(partner)


def test_partner_repr_masks_a_password_in_the_url() -> None:
    partner = endpoint("https://acme:url-Pa55@ch.example/core", auth_type=AuthType.NONE)

    assert "url-Pa55" not in repr(partner)
    assert "https://acme:***@ch.example/core" in repr(partner)


async def test_core_error_message_echoing_the_password_is_scrubbed(
    partner_server: PartnerServer, client: httpx.AsyncClient
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return core_response(
            {"ErrorCode": "UnAuthorized", "ErrorMessage": f"Password {SECRET} is expired"}
        )

    partner_server.handler = handler

    failed = await failure(partner_server, client)

    assert failed.reason == "CORE error UnAuthorized: Password *** is expired"


def test_sender_for_picks_the_transport(client: httpx.AsyncClient) -> None:
    assert isinstance(sender_for(endpoint("http://x"), client), CoreMimeSender)
    assert isinstance(
        sender_for(endpoint("http://x", transport=Transport.X12_HTTP), client), X12HttpSender
    )
