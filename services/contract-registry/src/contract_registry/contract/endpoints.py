"""The contract registry screen: the list across every payer, the banner, the drawer, and
create and edit in place under a payer."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Query, Response

from contract_registry.contract import service
from contract_registry.contract.repository import ContractFilters
from contract_registry.contract.schemas import (
    ContractCreate,
    ContractRead,
    ContractUpdate,
    ExpiringCounts,
    Window,
)
from contract_registry.models import ContractStatus
from rcm_kit.auth import CONFIG_READ, CONFIG_UPDATE
from rcm_kit.clock import today_in
from rcm_kit.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from rcm_kit.service import TenantScope, tenant_scope

admin = APIRouter(prefix="/api/v1/admin/contracts", tags=["contracts"])
payers = APIRouter(prefix="/api/v1/payers/{payer_id}/contracts", tags=["contracts"])
Reader = Annotated[TenantScope, tenant_scope(CONFIG_READ)]
Writer = Annotated[TenantScope, tenant_scope(CONFIG_UPDATE)]

PayerFilter = Annotated[UUID | None, Query(description="Only this payer's contracts.")]
BillingEntityFilter = Annotated[
    UUID | None, Query(description="Only this billing entity's contracts.")
]
StatusFilter = Annotated[
    ContractStatus | None,
    Query(
        description="Status as the contract reads today: EXPIRED includes ACTIVE contracts "
        "past their effective_to, ACTIVE excludes them."
    ),
]
Search = Annotated[
    str | None,
    Query(
        max_length=100,
        description="Case-insensitive substring of the contract's name or number.",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        description='The ETag of the contract as you read it ("3", 3 or W/"3"). When it is '
        "stale the edit is refused with 412 and nothing changes. Omit it to overwrite."
    ),
]


def _today(scope: TenantScope) -> date:
    return today_in(scope.runtime.clock, scope.tenant.timezone)


def _etag(response: Response, contract: ContractRead) -> ContractRead:
    response.headers["ETag"] = f'"{contract.version}"'
    return contract


@admin.get("", response_model=Page[ContractRead])
async def list_contracts(
    scope: Reader,
    payer_id: PayerFilter = None,
    billing_entity_id: BillingEntityFilter = None,
    status: StatusFilter = None,
    expiring_within_days: Annotated[
        Window | None,
        Query(
            description="Show expiring: ACTIVE contracts whose effective_to is today or "
            "within 30, 60 or 90 days (in your organization's time zone). Any other value: 422."
        ),
    ] = None,
    q: Search = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[ContractRead]:
    """Every contract of your organization across all payers, joined with payer and
    billing entity names, by `effective_to` ascending (open-ended contracts last), then
    `contract_id`.

    The filters combine. A cursor only continues the list it came from: sent with other
    filters it answers 422, so start again without it when the filters change. Needs
    `config.read`.
    """
    filters = ContractFilters(
        payer_id=payer_id,
        billing_entity_id=billing_entity_id,
        status=status,
        q=service.normalise_q(q),
        expiring_within_days=expiring_within_days,
    )
    return await service.list_contracts(
        scope.session, today=_today(scope), filters=filters, cursor=cursor, limit=limit
    )


@admin.get("/summary", response_model=ExpiringCounts)
async def contract_summary(
    scope: Reader,
    payer_id: PayerFilter = None,
    billing_entity_id: BillingEntityFilter = None,
    status: StatusFilter = None,
    q: Search = None,
) -> ExpiringCounts:
    """The header banner: how many contracts read ACTIVE, and how many of those expire
    within 30, 60 and 90 days.

    Takes the list's filters (all optional), and `expiring.N` is always the number of rows
    the list returns with the same filters and `expiring_within_days=N`, so "Show
    expiring" never shows a different count from the banner. Needs `config.read`.
    """
    filters = ContractFilters(
        payer_id=payer_id,
        billing_entity_id=billing_entity_id,
        status=status,
        q=service.normalise_q(q),
    )
    return await service.summary(scope.session, today=_today(scope), filters=filters)


@admin.get(
    "/{contract_id}",
    response_model=ContractRead,
    responses={200: {"headers": {"ETag": {"description": 'The version, e.g. "3"'}}}},
)
async def get_contract(contract_id: UUID, scope: Reader, response: Response) -> ContractRead:
    """One contract as the list shows it (the row drawer), with its version in `ETag`:
    send that back in `If-Match` when editing it. 404 when the contract does not exist in
    your organization. Needs `config.read`.
    """
    contract = await service.get_contract(scope.session, contract_id, today=_today(scope))
    return _etag(response, contract)


@payers.post(
    "",
    response_model=ContractRead,
    status_code=201,
    responses={201: {"headers": {"ETag": {"description": 'The version, "1"'}}}},
)
async def create_contract(
    payer_id: UUID, body: ContractCreate, scope: Writer, response: Response
) -> ContractRead:
    """Create a contract with this payer (the payer + program config dialog).

    404 when the payer does not exist; 422 naming the field when `billing_entity_id` is
    unknown or `effective_to` is before `effective_from`; 409 with `existing_contract_id`
    when the payer already has a contract with this `contract_number`. `status` defaults
    to ACTIVE. Answers the enriched row with its `ETag`. Audited. Needs `config.update`.
    """
    contract = await service.create_contract(
        scope.session,
        payer_id,
        body,
        actor=scope.principal,
        at=scope.runtime.clock.now(),
        today=_today(scope),
    )
    return _etag(response, contract)


@payers.patch(
    "/{contract_id}",
    response_model=ContractRead,
    responses={
        200: {"headers": {"ETag": {"description": "The new version"}}},
        412: {"description": "Stale `If-Match`: the body's `current_version` is the latest."},
    },
)
async def update_contract(
    payer_id: UUID,
    contract_id: UUID,
    body: ContractUpdate,
    scope: Writer,
    response: Response,
    if_match: IfMatch = None,
) -> ContractRead:
    """Edit a contract in place: only the fields sent change; `effective_to: null` makes
    it open-ended.

    404 when the contract is not this payer's. With `If-Match`, 412 (and
    `current_version` in the body) when someone saved the contract since you read it;
    of two simultaneous edits with the same `If-Match`, exactly one succeeds. 422 when
    the resulting dates do not hold together (`effective_to` before `effective_from`,
    naming the field you sent). Answers the row with its new `ETag`; a change bumps
    `version` and is audited. Needs `config.update`.
    """
    contract = await service.update_contract(
        scope.session,
        payer_id,
        contract_id,
        body,
        if_match=if_match,
        actor=scope.principal,
        at=scope.runtime.clock.now(),
        today=_today(scope),
    )
    return _etag(response, contract)
