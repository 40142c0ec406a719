"""Admin of trading partners: the clearinghouses or payer endpoints that 270s go through.

The connectivity test sends a real probe 270 (``check.probe``); the inbound endpoint
authenticates partners with ``inbound_auth``.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response

from eligibility_sweeps.check.endpoints import pipeline_of
from eligibility_sweeps.check.probe import probe
from eligibility_sweeps.config import Settings
from eligibility_sweeps.models import audit_event
from eligibility_sweeps.trading_partner import service
from eligibility_sweeps.trading_partner.credentials import SecretBox
from eligibility_sweeps.trading_partner.schemas import (
    ConnectivityTest,
    InboundCredential,
    TradingPartnerCreate,
    TradingPartnerCreated,
    TradingPartnerRead,
    TradingPartnerUpdate,
)
from rcm_kit.audit import AuditAction, record_audit
from rcm_kit.auth import CONFIG_READ, CONFIG_UPDATE
from rcm_kit.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from rcm_kit.service import TenantScope, get_runtime, tenant_scope

router = APIRouter(prefix="/api/v1/admin/trading-partners", tags=["trading partners"])
Reader = Annotated[TenantScope, tenant_scope(CONFIG_READ)]
Writer = Annotated[TenantScope, tenant_scope(CONFIG_UPDATE)]


def _secret_box(request: Request) -> SecretBox | None:
    settings = get_runtime(request).settings
    key = settings.SECRETS_KEY if isinstance(settings, Settings) else None
    return SecretBox(key) if key is not None else None


Box = Annotated[SecretBox | None, Depends(_secret_box)]


@router.get("", response_model=Page[TradingPartnerRead])
async def list_partners(
    scope: Reader, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[TradingPartnerRead]:
    """Every trading partner of your organization by name, then id, with its payers and
    limits. Passwords and tokens are never returned. Needs `config.read`.
    """
    return await service.list_partners(scope.session, cursor=cursor, limit=limit)


@router.post("", response_model=TradingPartnerCreated, status_code=201)
async def create_partner(
    body: TradingPartnerCreate, scope: Writer, box: Box
) -> TradingPartnerCreated:
    """Add a trading partner and route `payer_ids` through it.

    `auth` is `{"type": "none"}` (the default), `{"type": "basic", "username", "password"}`
    or `{"type": "bearer", "token"}`; the password or token is stored encrypted and never
    returned (409 when the service has no `SECRETS_KEY` to encrypt it with). The answer
    carries `inbound_credential`, the partner's secret for posting 271s back to
    `/api/v1/eligibility/inbound/{trading_partner_id}`: it is shown this once, so hand it
    over now (rotate it later if it is lost).

    422 naming the field for a bad value (`endpoint_url` not http(s), `usage_indicator`
    not T or P, `timeout_seconds` outside 1-60, an X12 id over 15 characters) or a payer
    that does not exist; a `payer_limits` payer must be in `payer_ids`. 409 for a name
    already in use, or a payer already routed through another active partner (named in
    the answer). Audited. Needs `config.update`.
    """
    return await service.create_partner(
        scope.session, body, box=box, actor=scope.principal, at=scope.runtime.clock.now()
    )


@router.get("/{trading_partner_id}", response_model=TradingPartnerRead)
async def get_partner(trading_partner_id: UUID, scope: Reader) -> TradingPartnerRead:
    """One trading partner. 404 when it does not exist in your organization. Needs
    `config.read`.
    """
    return await service.get_partner(scope.session, trading_partner_id)


@router.patch("/{trading_partner_id}", response_model=TradingPartnerRead)
async def update_partner(
    trading_partner_id: UUID, body: TradingPartnerUpdate, scope: Writer, box: Box
) -> TradingPartnerRead:
    """Edit a trading partner: only the fields sent change.

    `auth` is replaced whole (send the password or token again). `payer_ids` replaces the
    routed payers, keeping the limits of those that stay; `payer_limits` replaces every
    limit. `active: false` stops routing through the partner; `true` checks again that
    none of its payers is routed through another active partner (409 naming it). The same
    validation as on create. Audited. Needs `config.update`.
    """
    return await service.update_partner(
        scope.session,
        trading_partner_id,
        body,
        box=box,
        actor=scope.principal,
        at=scope.runtime.clock.now(),
    )


@router.delete("/{trading_partner_id}", status_code=204, response_class=Response)
async def delete_partner(trading_partner_id: UUID, scope: Writer) -> Response:
    """Delete a trading partner and its payer routing. To stop using it for a while,
    PATCH `active: false` instead. 404 when it does not exist. Audited. Needs
    `config.update`.
    """
    await service.delete_partner(
        scope.session, trading_partner_id, actor=scope.principal, at=scope.runtime.clock.now()
    )
    return Response(status_code=204)


@router.post("/{trading_partner_id}/test", response_model=ConnectivityTest)
async def test_partner(trading_partner_id: UUID, scope: Writer) -> ConnectivityTest:
    """Send a real probe 270 to the partner and say what happened, in words.

    The probe asks about a made-up member with usage indicator `T`, so a 271 saying
    "subscriber not found" means the connection works. `ok` is false for a timeout, a
    refused connection, an HTTP or CORE error, or a 999/TA1 rejecting the envelope, with
    the partner's own words in `outcome`; never a 500. Rate limits, daily caps and the
    circuit breaker do not apply to the probe. 404 when the partner does not exist.
    Audited. Needs `config.update`.
    """
    directory, tenant = scope.runtime.directory, scope.tenant
    result = await probe(
        pipeline_of(scope), lambda: directory.transaction(tenant), trading_partner_id
    )
    if result is None:
        raise service.TradingPartnerNotFound(service.NOT_FOUND)
    at = scope.runtime.clock.now()
    await record_audit(
        scope.session,
        audit_event,
        actor=scope.principal,
        action=AuditAction.EXECUTE,
        entity_type=service.ENTITY,
        entity_id=trading_partner_id,
        at=at,
        detail={"test": "connectivity", "ok": result.ok},
    )
    return ConnectivityTest(
        trading_partner_id=trading_partner_id,
        ok=result.ok,
        outcome=result.outcome,
        elapsed_ms=result.elapsed_ms,
        response_kind=result.response_kind,
        tested_at=at,
    )


@router.post("/{trading_partner_id}/inbound-credential", response_model=InboundCredential)
async def rotate_inbound_credential(trading_partner_id: UUID, scope: Writer) -> InboundCredential:
    """Issue a new inbound credential, shown this once; the previous one stops working at
    once. 404 when the partner does not exist. Audited. Needs `config.update`.
    """
    return await service.rotate_inbound_credential(
        scope.session, trading_partner_id, actor=scope.principal, at=scope.runtime.clock.now()
    )
