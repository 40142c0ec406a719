"""Picker list of the sweeps service: facilities."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from rcm_kit.auth import CONFIG_READ, ELIGIBILITY_READ
from rcm_kit.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from rcm_kit.service import TenantScope, tenant_scope
from rcm_reference import repository
from rcm_reference.schemas import FacilityRead

router = APIRouter(prefix="/api/v1", tags=["reference"])
Reader = Annotated[TenantScope, tenant_scope(ELIGIBILITY_READ, CONFIG_READ)]


@router.get("/facilities", response_model=Page[FacilityRead])
async def list_facilities(
    scope: Reader, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[FacilityRead]:
    """Facilities for the facility picker, by name then id."""
    rows, next_cursor = await repository.list_facilities(scope.session, cursor=cursor, limit=limit)
    return Page(items=[FacilityRead.model_validate(r) for r in rows], next_cursor=next_cursor)
