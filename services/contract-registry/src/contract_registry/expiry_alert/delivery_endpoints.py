"""Expiry-alert delivery routes: "Send test", the delivery history, the dispatcher status.

Include this router ahead of the alert CRUD router, so ``/expiry-alerts/dispatcher`` is
not read as an alert id.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter
from redis.exceptions import RedisError

from contract_registry.config import ExpiryAlertSettings
from contract_registry.expiry_alert import delivery, delivery_repository, dispatcher_status
from contract_registry.expiry_alert.delivery_schemas import (
    DeliveryRead,
    DispatcherStatusRead,
    SendTestRead,
)
from rcm_kit.auth import CONFIG_READ, CONFIG_UPDATE
from rcm_kit.logging import get_logger
from rcm_kit.mail import MailSender, SmtpSettings
from rcm_kit.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from rcm_kit.service import Runtime, TenantScope, tenant_scope

log = get_logger(__name__)
router = APIRouter(prefix="/api/v1/admin/contracts/expiry-alerts", tags=["expiry alerts"])
Reader = Annotated[TenantScope, tenant_scope(CONFIG_READ)]
Editor = Annotated[TenantScope, tenant_scope(CONFIG_UPDATE)]

MAIL_SENDER = "mail_sender"


def mail_sender(runtime: Runtime) -> MailSender:
    """The process's sender (one connection per mail: test sends are rare)."""
    sender = runtime.extras.get(MAIL_SENDER)
    if not isinstance(sender, MailSender):
        settings = runtime.settings
        smtp = settings if isinstance(settings, SmtpSettings) else SmtpSettings()
        sender = MailSender(smtp, max_connections=4, reuse=False)
        runtime.extras[MAIL_SENDER] = sender
    return sender


@router.get("/dispatcher", response_model=DispatcherStatusRead)
async def dispatcher(scope: Reader) -> DispatcherStatusRead:
    """Whether the expiry-alert dispatcher is enabled, its interval and when it last
    ticked, so the SPA can say why alerts are not firing. `last_tick_at` is null when no
    dispatcher has reported for a few intervals (none running, or disabled)."""
    runtime = scope.runtime
    try:
        status = await dispatcher_status.read(
            runtime.redis, dispatcher_status.status_key(runtime.settings.DATABASE_URL)
        )
    except (RedisError, OSError, ValueError, KeyError) as error:
        log.warning("expiry_alert.dispatcher_status_unavailable", error=type(error).__name__)
        status = None
    if status is None:
        own = runtime.settings
        flags = own if isinstance(own, ExpiryAlertSettings) else ExpiryAlertSettings()
        return DispatcherStatusRead(
            enabled=flags.CONTRACT_EXPIRY_ALERTS_ENABLED,
            interval_ms=flags.CONTRACT_EXPIRY_INTERVAL_MS,
            last_tick_at=None,
        )
    return DispatcherStatusRead(
        enabled=status.enabled, interval_ms=status.interval_ms, last_tick_at=status.last_tick_at
    )


@router.post("/{alert_id}/test", response_model=SendTestRead)
async def send_test(alert_id: UUID, scope: Editor) -> SendTestRead:
    """Send the alert's mail now to its recipients, with the contracts that match today,
    or saying that none do. Records a TEST delivery and the alert's `last_status` and
    `last_error`; never sets `last_fired_at`, so the next scheduled tick still fires.
    An unreachable or refusing mail relay answers `status: FAILED` with the relay's words
    in `error`, not an HTTP error."""
    runtime = scope.runtime
    sender = mail_sender(runtime)
    outcome = await delivery.send_test(
        scope.session,
        scope.tenant,
        alert_id,
        actor=scope.principal,
        now=runtime.clock.now(),
        sender=sender,
        smtp=sender.settings,
    )
    return SendTestRead(
        status=outcome.status, matched_contracts=outcome.matched_contracts, error=outcome.error
    )


@router.get("/{alert_id}/deliveries", response_model=Page[DeliveryRead])
async def list_deliveries(
    alert_id: UUID, scope: Reader, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[DeliveryRead]:
    """The alert's delivery attempts, newest first: scheduled and test sends, their
    outcome, who they went to and the mail relay's error. NO_CONTRACTS appears at most
    once a day."""
    if await delivery_repository.get_alert(scope.session, alert_id) is None:
        raise delivery.AlertNotFound(alert_id)
    rows, next_cursor = await delivery_repository.list_deliveries(
        scope.session, alert_id=alert_id, cursor=cursor, limit=limit
    )
    return Page(items=[DeliveryRead.model_validate(r) for r in rows], next_cursor=next_cursor)
