"""The sandbox's HTTP surface: the two transports, and ``/sandbox/*`` for tests.

The transport endpoints only turn HTTP into a call on ``Sandbox`` and its answer back
into HTTP; every decision is in ``service``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from clearinghouse_sandbox import core
from clearinghouse_sandbox.auth import Credentials
from clearinghouse_sandbox.delivery import X12_CONTENT_TYPE
from clearinghouse_sandbox.schemas import (
    ConfigRead,
    ConfigUpdate,
    DeliveryList,
    DeliveryRead,
    RequestList,
    RequestRead,
)
from clearinghouse_sandbox.service import (
    Answer,
    Deferred,
    EnvelopeFailure,
    HttpFailure,
    Sandbox,
    Waiter,
    X12Answer,
)

router = APIRouter()

DEFAULT_LIMIT = 1000
MAX_LIMIT = 100_000
_CORE_PAYLOAD_TYPES = {
    "271": core.RESPONSE_271,
    "999": core.RESPONSE_999,
    "TA1": core.RESPONSE_TA1,
}
_ACCEPTED_MESSAGE = "Accepted: the 271 will be posted to the inbound URL"


def get_sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


SandboxDep = Annotated[Sandbox, Depends(get_sandbox)]


def client_gone(request: Request) -> Waiter:
    """Waits for ``http.disconnect``; only called once the body has been read."""

    async def wait() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    return wait


@router.post(
    "/x12",
    tags=["transports"],
    openapi_extra={"requestBody": {"content": {X12_CONTENT_TYPE: {"schema": {"type": "string"}}}}},
)
async def post_x12(request: Request, sandbox: SandboxDep) -> Response:
    """Transport `x12-http`: a raw X12 270 in the body (any content type).

    200 with the 271, 999 or TA1 as `application/edi-x12`; 202 with an empty body when
    the 271 will be delivered later; 400 when the body holds no ISA; 401, 500 or 503
    with a plain-text reason when a rule or the config says so."""
    body = (await request.body()).decode("utf-8", errors="replace")
    credentials = Credentials.from_header(request.headers.get("authorization"))
    answer = await sandbox.answer_x12(body, credentials, client_gone(request))
    return _x12_response(answer)


def _x12_response(answer: Answer) -> Response:
    if isinstance(answer, X12Answer):
        return Response(answer.text, media_type=X12_CONTENT_TYPE)
    if isinstance(answer, Deferred):
        return Response(status_code=202)
    if isinstance(answer, EnvelopeFailure):
        return Response(answer.message, status_code=answer.status, media_type="text/plain")
    return _plain(answer)


def _plain(answer: HttpFailure) -> Response:
    return Response(
        answer.text,
        status_code=answer.status,
        media_type="text/plain",
        headers=dict(answer.headers),
    )


@router.post(
    "/core",
    tags=["transports"],
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            name: {"type": "string"}
                            for name in (*core.REQUIRED_FIELDS, "UserName", "Password")
                        },
                    }
                }
            }
        }
    },
)
async def post_core(request: Request, sandbox: SandboxDep) -> Response:
    """Transport `core-mime`: CAQH CORE vC2.2.0 real-time HTTP MIME (multipart/form-data).

    200 with a CORE envelope whose Payload is the 271, 999 or TA1 (ErrorCode `Success`),
    or an accepted 999 when the 271 will be delivered later; an envelope error answers
    400 with ErrorCode `<Field>Required`, `<Field>Illegal` or `VersionMismatch` and no
    payload. 401 and 503 are plain text, as on `x12-http`."""
    fields = await _form_fields(request)
    answer, envelope = await sandbox.answer_core(
        fields, request.headers.get("authorization"), client_gone(request)
    )
    return _core_response(answer, envelope, sandbox)


async def _form_fields(request: Request) -> dict[str, str]:
    """Every form field as text; file parts (a Payload sent as a file) are read too."""
    fields: dict[str, str] = {}
    async with request.form() as form:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                fields[name] = (await value.read()).decode("utf-8", errors="replace")
            else:
                fields[name] = value
    return fields


def _core_response(answer: Answer, envelope: core.CoreRequest | None, sandbox: Sandbox) -> Response:
    at = sandbox.clock.now()
    if isinstance(answer, HttpFailure):
        return _plain(answer)
    if isinstance(answer, EnvelopeFailure):
        fields = core.answer_fields(
            envelope,
            at=at,
            payload_type=core.ERROR_PAYLOAD_TYPE,
            payload=None,
            error_code=answer.code,
            error_message=answer.message,
        )
        status = answer.status
    elif isinstance(answer, Deferred):
        fields = core.answer_fields(
            envelope,
            at=at,
            payload_type=core.RESPONSE_999,
            payload=answer.acknowledgment,
            error_message=_ACCEPTED_MESSAGE,
        )
        status = 200
    else:
        fields = core.answer_fields(
            envelope, at=at, payload_type=_CORE_PAYLOAD_TYPES[answer.kind], payload=answer.text
        )
        status = 200
    body, content_type = core.encode_multipart(fields)
    return Response(body, status_code=status, media_type=content_type)


@router.get("/sandbox/requests", tags=["sandbox"])
async def list_requests(
    sandbox: SandboxDep,
    subscriber_id: str | None = None,
    since: Annotated[datetime | None, Query(description="RFC 3339; inclusive.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> RequestList:
    """Requests received, oldest first: the first `limit` at or after `since`, for one
    subscriber id (case-insensitive) when given. Refused ones are there too."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)  # a bare time is read as UTC, like received_at
    found = sandbox.records.find_requests(subscriber_id=subscriber_id, since=since, limit=limit)
    return RequestList(items=[RequestRead.of(r) for r in found], count=len(found))


@router.delete("/sandbox/requests", status_code=204, tags=["sandbox"])
async def clear_requests(sandbox: SandboxDep) -> Response:
    """Forget every recorded request and delivery attempt."""
    sandbox.records.clear()
    return Response(status_code=204)


@router.get("/sandbox/deliveries", tags=["sandbox"])
async def list_deliveries(
    sandbox: SandboxDep,
    trace_number: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> DeliveryList:
    """Every attempt to post a delayed answer, oldest first."""
    found = sandbox.records.find_deliveries(trace_number=trace_number, limit=limit)
    return DeliveryList(items=[DeliveryRead.of(d) for d in found], count=len(found))


@router.get("/sandbox/config", tags=["sandbox"])
async def read_config(sandbox: SandboxDep) -> ConfigRead:
    """The runtime config (secrets show only as `*_set`)."""
    return ConfigRead.of(sandbox.config)


@router.put("/sandbox/config", tags=["sandbox"])
async def update_config(update: ConfigUpdate, sandbox: SandboxDep) -> ConfigRead:
    """Change some of the runtime config; fields left out keep their value. Takes
    effect for the next request (delayed deliveries read it at each attempt)."""
    try:
        config = sandbox.configure(update.changes())
    except ValidationError as error:
        raise RequestValidationError(error.errors()) from None
    return ConfigRead.of(config)


@router.get("/healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    """200 while the process serves requests."""
    return {"status": "ok"}
