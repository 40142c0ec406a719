"""Audit of configuration changes in ``eligibility.audit_event`` (field names only)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.models import audit_event
from rcm_kit.audit import AuditAction, record_change
from rcm_kit.auth import Principal


async def audit_change(
    session: AsyncSession,
    action: AuditAction,
    entity_type: str,
    entity_id: UUID,
    fields: list[str],
    *,
    actor: Principal | str,
    at: datetime,
) -> None:
    """Record who changed which fields of a trading partner or a schedule, in the
    change's own transaction."""
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
