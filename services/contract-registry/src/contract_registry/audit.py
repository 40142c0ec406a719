"""Audit of configuration changes (contracts, alerts) in ``billing.audit_event``."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from contract_registry.models import audit_event
from rcm_kit.audit import AuditAction, record_change
from rcm_kit.auth import Principal


async def audit_change(
    session: AsyncSession,
    action: AuditAction,
    entity_id: UUID,
    fields: list[str],
    *,
    entity_type: str,
    actor: Principal,
    at: datetime,
) -> None:
    """Record who changed which fields of an entity (names only, never values)."""
    await record_change(
        session,
        audit_event,
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        fields=fields,
        at=at,
    )
