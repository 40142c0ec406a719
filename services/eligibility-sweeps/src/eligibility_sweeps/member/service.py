"""Reading members. Every read of member-level data leaves an audit row in its transaction."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.member import repository
from eligibility_sweeps.member.schemas import CoveragePolicyRead, MemberDetail, MemberRead
from eligibility_sweeps.models import audit_event
from rcm_kit.audit import AuditAction, record_audit
from rcm_kit.auth import Principal
from rcm_kit.errors import NotFound
from rcm_kit.pagination import Page


class MemberNotFound(NotFound):
    title = "Member not found"


async def list_members(
    session: AsyncSession,
    *,
    actor: Principal,
    at: datetime,
    external_id: str | None,
    q: str | None,
    cursor: str | None,
    limit: int,
) -> Page[MemberRead]:
    # Collapse whitespace so "ana  lee" and "ana lee" share a cursor.
    q = " ".join((q or "").split()) or None
    rows, next_cursor = await repository.list_members(
        session, external_id=external_id, q=q, cursor=cursor, limit=limit
    )
    # The filters' names only: their values (a name, an MRN) are patient data.
    used = [name for name, value in (("external_id", external_id), ("q", q)) if value]
    await record_audit(
        session,
        audit_event,
        actor=actor,
        action=AuditAction.READ,
        entity_type="member_list",
        entity_id=None,
        at=at,
        detail={"filters": used, "returned": len(rows)},
    )
    return Page(items=[MemberRead.model_validate(row) for row in rows], next_cursor=next_cursor)


async def get_member(
    session: AsyncSession, member_id: UUID, *, actor: Principal, at: datetime
) -> MemberDetail:
    row = await repository.get_member(session, member_id)
    if row is None:
        raise MemberNotFound("No member with this member_id in your organization.")
    policies = await repository.coverage_policies(session, member_id)
    await record_audit(
        session,
        audit_event,
        actor=actor,
        action=AuditAction.READ,
        entity_type="member",
        entity_id=member_id,
        at=at,
    )
    return MemberDetail(
        **MemberRead.model_validate(row).model_dump(),
        gender=row.gender,
        coverage_policies=[CoveragePolicyRead.model_validate(p) for p in policies],
    )
