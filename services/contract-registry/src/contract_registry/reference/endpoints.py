"""Picker lists of the contract registry: payers and billing entities."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from rcm_kit.auth import CONFIG_READ, ELIGIBILITY_READ
from rcm_kit.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from rcm_kit.service import TenantScope, tenant_scope
from rcm_reference import repository
from rcm_reference.schemas import BillingEntityRead, PayerRead

router = APIRouter(prefix="/api/v1", tags=["reference"])
Reader = Annotated[TenantScope, tenant_scope(CONFIG_READ, ELIGIBILITY_READ)]


@router.get("/payers", response_model=Page[PayerRead])
async def list_payers(
    scope: Reader,
    active: Annotated[bool | None, Query(description="Only active (or inactive) payers")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[PayerRead]:
    """Payers for the contract and alert pickers, by name then id."""
    rows, next_cursor = await repository.list_payers(
        scope.session, cursor=cursor, limit=limit, active=active
    )
    return Page(items=[PayerRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/billing-entities", response_model=Page[BillingEntityRead])
async def list_billing_entities(
    scope: Reader, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[BillingEntityRead]:
    """Billing entities for the contract pickers, by name then id."""
    rows, next_cursor = await repository.list_billing_entities(
        scope.session, cursor=cursor, limit=limit
    )
    return Page(items=[BillingEntityRead.model_validate(r) for r in rows], next_cursor=next_cursor)
