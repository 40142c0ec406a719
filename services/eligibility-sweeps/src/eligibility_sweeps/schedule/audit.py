"""Audit of schedule changes in ``eligibility.audit_event`` (field names only)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.models import audit_event
from rcm_kit.audit import AuditAction, record_audit
from rcm_kit.auth import Principal

ENTITY = "sweep_schedule"


async def audit_change(
    session: AsyncSession,
    action: AuditAction,
    entity_id: UUID,
    fields: list[str],
    *,
    actor: Principal,
    at: datetime,
) -> None:
    """Record who changed which fields of a schedule, in the change's transaction."""
    await record_audit(
        session,
        audit_event,
        actor=actor,
        action=action,
        entity_type=ENTITY,
        entity_id=entity_id,
        at=at,
        detail={"fields": sorted(fields)},
    )
