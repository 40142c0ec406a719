"""Members and their coverage. Every read of member-level data and every change leaves
an audit row in its transaction (ids and field names only, never patient data)."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.member import repository
from eligibility_sweeps.member.schemas import (
    CoveragePolicyCreate,
    CoveragePolicyRead,
    MemberDetail,
    MemberRead,
)
from eligibility_sweeps.models import audit_event
from rcm_kit.audit import AuditAction, record_audit
from rcm_kit.auth import Principal
from rcm_kit.errors import Conflict, Loc, NotFound, raise_if_any
from rcm_kit.pagination import Page
from rcm_reference.models import payer
from rcm_reference.repository import existing_ids

_NOT_FOUND = "No member with this member_id in your organization."


class MemberNotFound(NotFound):
    title = "Member not found"


class DuplicateCoveragePolicy(Conflict):
    title = "Duplicate coverage policy"


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
        raise MemberNotFound(_NOT_FOUND)
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


async def add_coverage_policy(
    session: AsyncSession,
    member_id: UUID,
    body: CoveragePolicyCreate,
    *,
    today: date,
    actor: Principal,
    at: datetime,
) -> CoveragePolicyRead:
    """Store a policy the intake desk keyed in. ``today`` is the tenant's calendar day,
    the latest possible date of birth."""
    if not await repository.member_exists(session, member_id):
        raise MemberNotFound(_NOT_FOUND)
    errors: list[tuple[Loc, str]] = []
    if not await existing_ids(session, payer, [body.payer_id]):
        errors.append((["payer_id"], "no payer with this id in your organization"))
    birth = body.subscriber_date_of_birth
    if birth is not None and birth > today:
        errors.append(
            (
                ["subscriber_date_of_birth"],
                f"is in the future (today is {today.isoformat()} in your organization)",
            )
        )
    raise_if_any(errors)

    values = {
        **body.model_dump(),
        "relationship": body.relationship.value,
        "member_id": member_id,
        "created_at": at,
        "updated_at": at,
    }
    new_id = await repository.insert_coverage_policy(session, values)
    if new_id is None:
        existing = await repository.coverage_policy_id_by_key(
            session, member_id, body.payer_id, body.subscriber_id
        )
        raise DuplicateCoveragePolicy(
            f"The member already holds coverage policy {existing} with this payer and "
            "subscriber_id.",
            coverage_policy_id=str(existing) if existing else None,
        )
    await record_audit(
        session,
        audit_event,
        actor=actor,
        action=AuditAction.CREATE,
        entity_type="coverage_policy",
        entity_id=new_id,
        at=at,
        detail={
            "member_id": str(member_id),
            "fields": sorted(name for name, value in body if value is not None),
        },
    )
    row = await repository.get_coverage_policy(session, new_id)
    return CoveragePolicyRead.model_validate(row)
