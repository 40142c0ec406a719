"""Member lookup for the intake desk: search, then one member with their coverage; and
adding a policy from the member's insurance card."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from eligibility_sweeps.member import service
from eligibility_sweeps.member.schemas import (
    CoveragePolicyCreate,
    CoveragePolicyRead,
    MemberDetail,
    MemberRead,
)
from rcm_kit.auth import ELIGIBILITY_READ, ELIGIBILITY_UPDATE
from rcm_kit.clock import today_in
from rcm_kit.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from rcm_kit.service import TenantScope, tenant_scope

router = APIRouter(prefix="/api/v1/members", tags=["members"])
Reader = Annotated[TenantScope, tenant_scope(ELIGIBILITY_READ)]
Writer = Annotated[TenantScope, tenant_scope(ELIGIBILITY_UPDATE)]


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


@router.post("/{member_id}/coverage-policies", response_model=CoveragePolicyRead, status_code=201)
async def add_coverage_policy(
    member_id: UUID, body: CoveragePolicyCreate, scope: Writer
) -> CoveragePolicyRead:
    """Add an insurance policy to a member, as keyed in from the insurance card; 201 with
    the policy and its payer. `GET /api/v1/members/{member_id}` lists it from then on.

    `subscriber_id` is the id on the card: letters, digits, spaces and `-` `.` `/` only
    (it is sent in the 270 as it is), surrounding spaces dropped. `priority` 1-9 (1 =
    primary, the default); `relationship` `self` (the default), `spouse`, `child` or
    `other`. When the member is not the subscriber, `subscriber_first_name`,
    `subscriber_last_name` and `subscriber_date_of_birth` are required; for `self` leave
    them out. Names must be writable in X12: accented letters are fine ("José"), letters
    with no plain equivalent ("Ø", CJK) are not, and a last name may have at most 60
    characters, a first name 35.

    422 naming every bad field: one of the rules above, `effective_to` before
    `effective_from`, a date of birth in the future, or a `payer_id` that is not one of
    your organization's payers. 404 when the member does not exist in your organization.
    409 when the member already holds a policy with this payer and `subscriber_id` (its
    `coverage_policy_id` is in the answer). Audited. Needs `eligibility.update`.
    """
    return await service.add_coverage_policy(
        scope.session,
        member_id,
        body,
        today=today_in(scope.runtime.clock, scope.tenant.timezone),
        actor=scope.principal,
        at=scope.runtime.clock.now(),
    )
