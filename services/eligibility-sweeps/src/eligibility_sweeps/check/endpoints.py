"""Eligibility checks for the intake desk, and the inbound door for late answers."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from eligibility_sweeps import idempotency
from eligibility_sweeps.check import inbound, repository
from eligibility_sweeps.check.pipeline import CheckOrder, CheckPipeline
from eligibility_sweeps.check.schemas import (
    CheckCreate,
    CheckRead,
    CheckWithX12,
    InboundFileRead,
    InboundFileWithBody,
    InboundResult,
    check_read,
)
from eligibility_sweeps.models import CheckStatus, audit_event
from eligibility_sweeps.trading_partner.inbound_auth import PartnerCaller, partner_credential
from rcm_kit.audit import AuditAction, record_audit
from rcm_kit.auth import ELIGIBILITY_INBOUND, ELIGIBILITY_READ, ELIGIBILITY_UPDATE
from rcm_kit.errors import NotFound, problem
from rcm_kit.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from rcm_kit.service import TenantScope, tenant_scope

router = APIRouter(prefix="/api/v1/eligibility", tags=["eligibility checks"])
Reader = Annotated[TenantScope, tenant_scope(ELIGIBILITY_READ)]
Writer = Annotated[TenantScope, tenant_scope(ELIGIBILITY_UPDATE)]
Inbound = Annotated[TenantScope, tenant_scope(ELIGIBILITY_INBOUND)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Retry-safe: the same key within 24 hours returns the first answer.",
    ),
]
_X12_TYPES = ("application/edi-x12", "application/x12", "text/plain", "application/octet-stream")


class CheckNotFound(NotFound):
    title = "Check not found"


class InboundFileNotFound(NotFound):
    title = "Inbound file not found"


def pipeline_of(scope: TenantScope) -> CheckPipeline:
    pipeline: CheckPipeline = scope.runtime.extras["checks"]
    return pipeline


@router.post(
    "/checks",
    response_model=CheckRead,
    status_code=201,
    responses={202: {"model": CheckRead, "description": "The 270 left; the 271 comes later."}},
)
async def create_check(
    body: CheckCreate, scope: Writer, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Send one 270 for a member's coverage and answer with the check.

    The coverage is `coverage_policy_id` when given, else the member's policy with
    `payer_id` active on `service_date`, else the member's primary policy active that
    day; none: 422 saying so. 201 when the outcome is in hand (RECEIVED with the parsed
    271, or FAILED with `error` and `retryable`); 202 when the partner accepted the 270
    and the 271 will arrive later through the inbound endpoint. The call waits for the
    payer's real-time answer: up to the partner's `timeout_seconds` (20 by default).
    Needs `eligibility.update`.
    """
    directory, tenant = scope.runtime.directory, scope.tenant
    reservation = None
    if idempotency_key is not None:
        async with directory.transaction(tenant) as session:
            reserved = await idempotency.reserve(
                session,
                scope=f"{scope.principal.subject}:POST /eligibility/checks",
                key=idempotency_key,
                digest=idempotency.request_digest(body.model_dump(mode="json")),
                now=scope.runtime.clock.now(),
            )
        if isinstance(reserved, idempotency.Replay):
            return JSONResponse(reserved.body, status_code=reserved.status_code)
        reservation = reserved
    try:
        check_id = await pipeline_of(scope).run(
            tenant.tenant_id,
            lambda: directory.transaction(tenant),
            CheckOrder(
                member_id=body.member_id,
                service_date=body.service_date,
                coverage_policy_id=body.coverage_policy_id,
                payer_id=body.payer_id,
            ),
        )
    except BaseException:
        if reservation is not None:
            async with directory.transaction(tenant) as session:
                await idempotency.forget(session, reservation)
        raise
    row = await repository.get_check(scope.session, check_id)
    assert row is not None  # committed by the pipeline
    await _audit(scope, AuditAction.CREATE, check_id)
    answer = jsonable_encoder(check_read(row))
    status = 202 if row.status == CheckStatus.SUBMITTED.value else 201
    if reservation is not None:
        await idempotency.remember(scope.session, reservation, status_code=status, body=answer)
    return JSONResponse(answer, status_code=status)


@router.get("/checks", response_model=Page[CheckRead])
async def list_checks(
    scope: Reader,
    member_id: Annotated[
        UUID | None, Query(description="The member whose checks to list; all when absent.")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[CheckRead]:
    """A member's check history, newest first (every check is kept); without
    `member_id`, every check of your organization, newest first. Needs
    `eligibility.read`; each read is recorded in the audit trail."""
    rows, next_cursor = await repository.history(
        scope.session, member_id, cursor=cursor, limit=limit
    )
    await record_audit(
        scope.session,
        audit_event,
        actor=scope.principal,
        action=AuditAction.READ,
        entity_type="check_list",
        entity_id=member_id,
        at=scope.runtime.clock.now(),
        detail={"returned": len(rows)},
    )
    return Page(items=[check_read(row) for row in rows], next_cursor=next_cursor)


@router.get("/checks/{check_id}", response_model=CheckWithX12 | CheckRead)
async def get_check(
    check_id: UUID,
    scope: Reader,
    include: Annotated[
        Literal["x12"] | None,
        Query(description="`x12` adds the raw 270 and the 271/999/TA1 as exchanged."),
    ] = None,
) -> CheckRead:
    """One check with its parsed answer. Needs `eligibility.read`; every read is
    recorded in the audit trail, saying whether the raw X12 was included."""
    row = await repository.get_check(scope.session, check_id)
    if row is None:
        raise CheckNotFound("No check with this check_id in your organization.")
    await _audit(scope, AuditAction.READ, check_id, detail={"include": include})
    return check_read(row, include_x12=include == "x12")


async def _audit(
    scope: TenantScope, action: AuditAction, check_id: UUID, detail: dict[str, Any] | None = None
) -> None:
    await record_audit(
        scope.session,
        audit_event,
        actor=scope.principal,
        action=action,
        entity_type="eligibility_check",
        entity_id=check_id,
        at=scope.runtime.clock.now(),
        detail=detail,
    )


_INBOUND_DOC = """A 271, 999 or TA1 that a trading partner delivers after the real-time
reply: raw X12 (`Content-Type: application/edi-x12`) or a CAQH CORE MIME envelope
(multipart/form-data with `Payload`). Matched to its check by trace number (a 999 or
TA1 by control number); the check moves from SUBMITTED to RECEIVED or FAILED. 202 with
what happened; the same file again changes nothing and answers the same. Unreadable or
unmatched: 422 saying why, and the file is kept for the operator. Over 5 MB: 413."""


@router.post("/inbound", response_model=InboundResult, status_code=202, description=_INBOUND_DOC)
async def inbound_with_token(request: Request, scope: Inbound) -> JSONResponse:
    """Deliver a late answer with a JWT carrying `eligibility.inbound`."""
    text, content_type, refusal = await _payload(request)
    received = await inbound.receive(
        scope.session,
        text,
        content_type=content_type,
        refusal=refusal,
        trading_partner_id=None,
        at=scope.runtime.clock.now(),
    )
    return _answer(received)


@router.post(
    "/inbound/{trading_partner_id}",
    response_model=InboundResult,
    status_code=202,
    description=_INBOUND_DOC
    + "\n\nAuthenticated by the partner's inbound credential (HTTP Basic password or bearer).",
)
async def inbound_with_credential(
    trading_partner_id: UUID,
    request: Request,
    caller: Annotated[PartnerCaller, partner_credential()],
) -> JSONResponse:
    """Deliver a late answer with the trading partner's inbound credential."""
    text, content_type, refusal = await _payload(request)
    async with caller.runtime.directory.transaction(caller.tenant) as session:
        received = await inbound.receive(
            session,
            text,
            content_type=content_type,
            refusal=refusal,
            trading_partner_id=trading_partner_id,
            at=caller.runtime.clock.now(),
        )
    return _answer(received)


@router.get("/inbound-files", response_model=Page[InboundFileRead])
async def list_inbound_files(
    scope: Reader,
    outcome: Annotated[
        Literal["MATCHED", "UNMATCHED", "UNREADABLE"] | None,
        Query(description="Only files with this outcome (UNMATCHED: for the operator)."),
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[InboundFileRead]:
    """Every file that arrived through the inbound endpoints, newest first, with what
    became of it: the operator's view of late answers that matched no check or could
    not be read. Bodies are left out (see the single file). Needs `eligibility.read`."""
    rows, next_cursor = await repository.inbound_files(
        scope.session, outcome, cursor=cursor, limit=limit
    )
    return Page(
        items=[InboundFileRead.model_validate(dict(r._mapping)) for r in rows],
        next_cursor=next_cursor,
    )


@router.get("/inbound-files/{inbound_file_id}", response_model=InboundFileWithBody)
async def get_inbound_file(inbound_file_id: UUID, scope: Reader) -> InboundFileWithBody:
    """One inbound file with its X12 body as received. Needs `eligibility.read`; every
    read is recorded in the audit trail (the body is patient data)."""
    row = await repository.get_inbound_file(scope.session, inbound_file_id)
    if row is None:
        raise InboundFileNotFound("No inbound file with this id in your organization.")
    await record_audit(
        scope.session,
        audit_event,
        actor=scope.principal,
        action=AuditAction.READ,
        entity_type="inbound_file",
        entity_id=inbound_file_id,
        at=scope.runtime.clock.now(),
    )
    return InboundFileWithBody.model_validate(dict(row._mapping))


async def _payload(request: Request) -> tuple[str, str, str | None]:
    """The X12 text of the body (raw, or the ``Payload`` of a CORE envelope), its
    content type, and why it cannot be read when it cannot (it is still kept)."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    raw = await request.body()
    body = raw.decode("utf-8", "replace")
    if media == "multipart/form-data":
        try:
            # The whole body is within the 5 MB limit already; Starlette would refuse a
            # part over 1 MB. ``async with`` closes the temporary file of a file part.
            async with request.form(max_part_size=len(raw) + 1) as form:
                payload = form.get("Payload")
                if payload is not None and not isinstance(payload, str):
                    payload = (await payload.read()).decode("utf-8", "replace")
        except Exception as error:  # the multipart parser's own words
            return body, content_type, f"Unreadable CORE envelope: {error}"
        if payload is None:
            return body, content_type, "A CORE envelope must carry the X12 in its Payload field"
        return payload, content_type, None
    if media and media not in _X12_TYPES:
        return (
            body,
            content_type,
            (
                f"Content-Type {media} is not X12: send application/edi-x12 or a CORE"
                " multipart/form-data envelope"
            ),
        )
    return body, content_type, None


def _answer(received: inbound.Received) -> JSONResponse:
    result = InboundResult(
        inbound_file_id=received.inbound_file_id,
        kind=received.kind,
        outcome=received.outcome.value,
        detail=received.detail,
        check_ids=received.check_ids,
        duplicate=received.duplicate,
    )
    if received.accepted:
        return JSONResponse(jsonable_encoder(result), status_code=202)
    unmatched = received.outcome.value == "UNMATCHED"
    extra = jsonable_encoder(result)
    # ``detail`` is the problem's own member: passed twice, problem() raised a TypeError.
    return problem(
        422,
        extra.pop("detail"),
        title="Inbound file not matched" if unmatched else "Unreadable file",
        **extra,
    )
