"""Member lookup for the intake desk: search, then one member with their coverage."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from eligibility_sweeps.member import service
from eligibility_sweeps.member.schemas import MemberDetail, MemberRead
from rcm_kit.auth import ELIGIBILITY_READ
from rcm_kit.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from rcm_kit.service import TenantScope, tenant_scope

router = APIRouter(prefix="/api/v1/members", tags=["members"])
Reader = Annotated[TenantScope, tenant_scope(ELIGIBILITY_READ)]


@router.get("", response_model=Page[MemberRead])
async def list_members(
    scope: Reader,
    external_id: Annotated[
        str | None,
        Query(max_length=80, description="Exact external id (MRN) of the member."),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=100,
            description="Search: every word must appear, in any case, in the first name, "
            "last name or external id (`ana lee` finds Ana Leeds).",
        ),
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[MemberRead]:
    """Members by last name, first name, then id.

    A cursor only continues the list it came from: sent with other `q` or `external_id`
    values it answers 422, so start again without it when the filters change. Needs
    `eligibility.read`; every search is recorded in the audit trail (without its terms).
    """
    return await service.list_members(
        scope.session,
        actor=scope.principal,
        at=scope.runtime.clock.now(),
        external_id=external_id,
        q=q,
        cursor=cursor,
        limit=limit,
    )


@router.get("/{member_id}", response_model=MemberDetail)
async def get_member(member_id: UUID, scope: Reader) -> MemberDetail:
    """One member with every coverage policy and its payer.

    404 when the member does not exist in your organization. Needs `eligibility.read`;
    each read is recorded in the audit trail.
    """
    return await service.get_member(
        scope.session, member_id, actor=scope.principal, at=scope.runtime.clock.now()
    )
