"""The audit helper: who read patient data or raw X12, who changed configuration.

Each owner of tenant tables keeps its own audit table (the kit owns no tables): it
declares one with ``audit_table`` in its metadata and migration tree, and records
events with ``record_audit`` inside the same transaction as the change, so an audited
change and its audit row commit or vanish together. ``detail`` holds ids and field
names, never patient data.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from rcm_kit.auth import Principal
from rcm_kit.logging import current_request_id


class AuditAction(enum.StrEnum):
    READ = "READ"
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    EXECUTE = "EXECUTE"


def audit_table(
    metadata: sa.MetaData, name: str = "audit_event", *, schema: str | None = None
) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("audit_event_id", sa.Uuid, primary_key=True, default=uuid4),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("entity_type", sa.String(60), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("detail", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Index(f"ix_{name}_entity", "entity_type", "entity_id", "occurred_at"),
        sa.Index(f"ix_{name}_occurred_at", "occurred_at"),
        schema=schema,
    )


async def record_audit(
    session: AsyncSession,
    table: sa.Table,
    *,
    actor: Principal | str,
    action: AuditAction,
    entity_type: str,
    entity_id: UUID | str | None,
    at: datetime,
    detail: Mapping[str, Any] | None = None,
) -> None:
    request_id = current_request_id()
    await session.execute(
        sa.insert(table).values(
            audit_event_id=uuid4(),
            occurred_at=at,
            actor=actor.subject if isinstance(actor, Principal) else actor,
            action=action.value,
            entity_type=entity_type,
            entity_id=str(entity_id) if entity_id is not None else None,
            request_id=request_id,
            detail=dict(detail or {}),
        )
    )


async def record_change(
    session: AsyncSession,
    table: sa.Table,
    *,
    actor: Principal | str,
    action: AuditAction,
    entity_type: str,
    entity_id: UUID | str,
    fields: Iterable[str],
    at: datetime,
) -> None:
    """Record who changed which fields of an entity: the names only, never the values
    (they may be patient data, URLs or secrets)."""
    await record_audit(
        session,
        table,
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        at=at,
        detail={"fields": sorted(fields)},
    )
