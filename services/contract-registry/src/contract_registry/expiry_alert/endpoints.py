"""The Expiry alerts tab: daily e-mail subscriptions (create, read, edit, pause, delete).

Sending a test, the delivery history and the dispatcher's status live on their own
router, which the app includes ahead of this one.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Response

from contract_registry.expiry_alert import service
from contract_registry.expiry_alert.schemas import AlertCreate, AlertRead, AlertUpdate
from rcm_kit.auth import CONFIG_READ, CONFIG_UPDATE
from rcm_kit.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from rcm_kit.service import TenantScope, tenant_scope

router = APIRouter(prefix="/api/v1/admin/contracts/expiry-alerts", tags=["expiry alerts"])
Reader = Annotated[TenantScope, tenant_scope(CONFIG_READ)]
Writer = Annotated[TenantScope, tenant_scope(CONFIG_UPDATE)]


@router.get("", response_model=Page[AlertRead])
async def list_alerts(
    scope: Reader, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[AlertRead]:
    """Every expiry alert of your organization, oldest first (`created_at`, then
    `alert_id`), with its last attempt: `last_status` SUCCESS (Sent), FAILED (see
    `last_error`) or NO_CONTRACTS (No matches). Needs `config.read`.
    """
    return await service.list_alerts(scope.session, cursor=cursor, limit=limit)


@router.post("", response_model=AlertRead, status_code=201)
async def create_alert(body: AlertCreate, scope: Writer) -> AlertRead:
    """Subscribe addresses to a daily e-mail listing the ACTIVE contracts in a scope that
    expire within `lead_days` (30, 60 or 90).

    `payer_id` / `billing_entity_id` null or omitted mean all. 422 naming the field for an
    unknown payer or billing entity, a `lead_days` other than 30, 60, 90, 0 or more than
    10 recipients (`recipients`), an address that is not one (`recipients.<index>`) or a
    subject over 200 characters. 409 with `existing_alert_id` when an alert already has
    the same payer, billing entity and lead time (nulls included): edit that one instead.
    Audited. Needs `config.update`.
    """
    return await service.create_alert(
        scope.session, body, actor=scope.principal, at=scope.runtime.clock.now()
    )


@router.get("/{alert_id}", response_model=AlertRead)
async def get_alert(alert_id: UUID, scope: Reader) -> AlertRead:
    """One expiry alert. 404 when it does not exist in your organization. Needs
    `config.read`.
    """
    return await service.get_alert(scope.session, alert_id)


@router.patch("/{alert_id}", response_model=AlertRead)
async def update_alert(alert_id: UUID, body: AlertUpdate, scope: Writer) -> AlertRead:
    """Edit an alert: only the fields sent change.

    `active: false` pauses it and keeps its scope, lead time and recipients (uncheck
    Active); `true` resumes it. An explicit null on `payer_id` or `billing_entity_id`
    widens the scope to all; `subject: null` restores the default subject. The same
    validation and 409 as on create. Audited. Needs `config.update`.
    """
    return await service.update_alert(
        scope.session, alert_id, body, actor=scope.principal, at=scope.runtime.clock.now()
    )


@router.delete("/{alert_id}", status_code=204, response_class=Response)
async def delete_alert(alert_id: UUID, scope: Writer) -> Response:
    """Delete an alert and its delivery history. To stop it for a while instead, PATCH
    `active: false`. 404 when it does not exist. Audited. Needs `config.update`.
    """
    await service.delete_alert(
        scope.session, alert_id, actor=scope.principal, at=scope.runtime.clock.now()
    )
    return Response(status_code=204)
