"""Expiry-alert subscriptions: scope references that must exist, one alert per scope and
lead time, and the default subject. Every change is audited in its transaction."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from contract_registry.audit import audit_change
from contract_registry.expiry_alert import repository
from contract_registry.expiry_alert.schemas import (
    AlertCreate,
    AlertRead,
    AlertUpdate,
    default_subject,
)
from rcm_kit.audit import AuditAction
from rcm_kit.auth import Principal
from rcm_kit.errors import Conflict, Loc, NotFound, raise_if_any
from rcm_kit.pagination import Page
from rcm_reference.models import billing_entity, payer
from rcm_reference.repository import existing_ids

ENTITY = "contract_expiry_alert"


class AlertNotFound(NotFound):
    title = "Expiry alert not found"


class DuplicateAlertScope(Conflict):
    title = "Duplicate expiry alert"


async def list_alerts(session: AsyncSession, *, cursor: str | None, limit: int) -> Page[AlertRead]:
    rows, next_cursor = await repository.list_alerts(session, cursor=cursor, limit=limit)
    return Page(items=[AlertRead.model_validate(row) for row in rows], next_cursor=next_cursor)


async def get_alert(session: AsyncSession, alert_id: UUID) -> AlertRead:
    row = await repository.get_alert(session, alert_id)
    if row is None:
        raise AlertNotFound("No expiry alert with this alert_id in your organization.")
    return AlertRead.model_validate(row)


async def _check_scope(session: AsyncSession, sent: dict[str, Any]) -> None:
    errors: list[tuple[Loc, str]] = []
    for field, table, noun in (
        ("payer_id", payer, "payer"),
        ("billing_entity_id", billing_entity, "billing entity"),
    ):
        value = sent.get(field)
        if value is not None and not await existing_ids(session, table, [value]):
            errors.append(([field], f"no {noun} with this id in your organization"))
    raise_if_any(errors)


async def _duplicate(session: AsyncSession, scope: dict[str, Any]) -> DuplicateAlertScope:
    existing = await repository.alert_id_by_scope(
        session, scope["payer_id"], scope["billing_entity_id"], scope["lead_days"]
    )
    return DuplicateAlertScope(
        f"Alert {existing} already covers this payer, billing entity and lead time "
        "(null meaning all); edit it instead.",
        existing_alert_id=str(existing) if existing else None,
    )


_audit = partial(audit_change, entity_type=ENTITY)


async def create_alert(
    session: AsyncSession, body: AlertCreate, *, actor: Principal, at: datetime
) -> AlertRead:
    values = body.model_dump()
    await _check_scope(session, values)
    if values["subject"] is None:
        values["subject"] = default_subject(body.lead_days)
    new_id = await repository.insert_alert(session, {**values, "created_at": at, "updated_at": at})
    if new_id is None:
        raise await _duplicate(session, values)
    await _audit(session, AuditAction.CREATE, new_id, list(values), actor=actor, at=at)
    return await get_alert(session, new_id)


async def update_alert(
    session: AsyncSession, alert_id: UUID, body: AlertUpdate, *, actor: Principal, at: datetime
) -> AlertRead:
    current = await repository.lock_alert(session, alert_id)
    if current is None:
        raise AlertNotFound("No expiry alert with this alert_id in your organization.")
    sent = body.model_dump(exclude_unset=True)
    await _check_scope(session, sent)
    lead_days = sent.get("lead_days", current.lead_days)
    if "subject" in sent:
        if sent["subject"] is None:
            sent["subject"] = default_subject(lead_days)
    elif current.subject == default_subject(current.lead_days):
        # A default subject follows the lead time; a custom one is kept.
        sent["subject"] = default_subject(lead_days)
    changes = {name: value for name, value in sent.items() if getattr(current, name) != value}
    if changes:
        if not await repository.update_alert(session, alert_id, changes, at=at):
            scope = {
                name: changes.get(name, getattr(current, name))
                for name in ("payer_id", "billing_entity_id", "lead_days")
            }
            raise await _duplicate(session, scope)
        await _audit(session, AuditAction.UPDATE, alert_id, list(changes), actor=actor, at=at)
    return await get_alert(session, alert_id)


async def delete_alert(
    session: AsyncSession, alert_id: UUID, *, actor: Principal, at: datetime
) -> None:
    if not await repository.delete_alert(session, alert_id):
        raise AlertNotFound("No expiry alert with this alert_id in your organization.")
    await _audit(session, AuditAction.DELETE, alert_id, [], actor=actor, at=at)
