"""Contract rules: references that must exist, dates that must hold together, one
contract number per payer, and edits guarded by the version (``If-Match``).

Every create and update leaves an audit row naming the fields it changed, in the same
transaction as the change.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import partial
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from contract_registry.audit import audit_change
from contract_registry.contract import repository
from contract_registry.contract.repository import ContractFilters
from contract_registry.contract.schemas import (
    ContractCreate,
    ContractRead,
    ContractUpdate,
    ExpiringCounts,
)
from rcm_kit.audit import AuditAction
from rcm_kit.auth import Principal
from rcm_kit.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from rcm_kit.pagination import Page
from rcm_reference.models import billing_entity, payer
from rcm_reference.repository import existing_ids

ENTITY = "payer_contract"


class ContractNotFound(NotFound):
    title = "Contract not found"


class PayerNotFound(NotFound):
    title = "Payer not found"


class DuplicateContractNumber(Conflict):
    title = "Duplicate contract number"


class StaleContractVersion(PreconditionFailed):
    title = "Contract changed since you read it"


_ETAG = re.compile(r'^(?:W/)?"?(\d{1,9})"?$')


def parse_if_match(header: str | None) -> set[int] | None:
    """The versions an ``If-Match`` header accepts (``"3"``, ``3``, ``W/"3"``, a list of
    them); None when absent or ``*`` (no precondition)."""
    if header is None or header.strip() in ("", "*"):
        return None
    versions = set()
    for item in header.split(","):
        match = _ETAG.match(item.strip())
        if match is None:
            raise InvalidInput(
                ["header", "If-Match"],
                'must be the ETag of the contract as read, e.g. "3" (its version)',
            )
        versions.add(int(match[1]))
    return versions


def normalise_q(q: str | None) -> str | None:
    return q.strip() or None if q else None


async def list_contracts(
    session: AsyncSession,
    *,
    today: date,
    filters: ContractFilters,
    cursor: str | None,
    limit: int,
) -> Page[ContractRead]:
    rows, next_cursor = await repository.list_contracts(
        session, today=today, filters=filters, cursor=cursor, limit=limit
    )
    return Page(items=[ContractRead.model_validate(row) for row in rows], next_cursor=next_cursor)


async def summary(
    session: AsyncSession, *, today: date, filters: ContractFilters
) -> ExpiringCounts:
    active, expiring = await repository.summary(session, today=today, filters=filters)
    return ExpiringCounts(
        active=active,
        expiring={"30": expiring[30], "60": expiring[60], "90": expiring[90]},
    )


async def get_contract(session: AsyncSession, contract_id: UUID, *, today: date) -> ContractRead:
    row = await repository.get_contract(session, contract_id, today=today)
    if row is None:
        raise ContractNotFound("No contract with this contract_id in your organization.")
    return ContractRead.model_validate(row)


async def _require_billing_entity(session: AsyncSession, billing_entity_id: UUID) -> None:
    if not await existing_ids(session, billing_entity, [billing_entity_id]):
        raise InvalidInput(
            ["billing_entity_id"], "no billing entity with this id in your organization"
        )


async def _duplicate(session: AsyncSession, payer_id: UUID, number: str) -> DuplicateContractNumber:
    existing = await repository.contract_id_by_number(session, payer_id, number)
    return DuplicateContractNumber(
        f"This payer already has a contract numbered {number!r}: contract {existing}.",
        existing_contract_id=str(existing) if existing else None,
    )


_audit = partial(audit_change, entity_type=ENTITY)


async def create_contract(
    session: AsyncSession,
    payer_id: UUID,
    body: ContractCreate,
    *,
    actor: Principal,
    at: datetime,
    today: date,
) -> ContractRead:
    if not await existing_ids(session, payer, [payer_id]):
        raise PayerNotFound("No payer with this payer_id in your organization.")
    await _require_billing_entity(session, body.billing_entity_id)
    values = body.model_dump()
    new_id = await repository.insert_contract(
        session, {**values, "payer_id": payer_id, "created_at": at, "updated_at": at}
    )
    if new_id is None:
        raise await _duplicate(session, payer_id, body.contract_number)
    await _audit(session, AuditAction.CREATE, new_id, list(values), actor=actor, at=at)
    return await get_contract(session, new_id, today=today)


def _check_dates(current: Any, sent: dict[str, Any]) -> None:
    start = sent.get("effective_from", current.effective_from)
    end = sent.get("effective_to", current.effective_to)
    if end is None or end >= start:
        return
    # Name the field the client sent (both sent: the end, as on create).
    if "effective_to" in sent:
        raise InvalidInput(
            ["effective_to"], f"must be on or after effective_from ({start.isoformat()})"
        )
    raise InvalidInput(["effective_from"], f"must be on or before effective_to ({end.isoformat()})")


async def update_contract(
    session: AsyncSession,
    payer_id: UUID,
    contract_id: UUID,
    body: ContractUpdate,
    *,
    if_match: str | None,
    actor: Principal,
    at: datetime,
    today: date,
) -> ContractRead:
    expected = parse_if_match(if_match)
    current = await repository.lock_contract(session, contract_id, today=today)
    if current is None or current.payer_id != payer_id:
        raise ContractNotFound("This payer has no contract with this contract_id.")
    if expected is not None and current.version not in expected:
        raise StaleContractVersion(
            f"The contract is at version {current.version}; read it again and reapply your change.",
            current_version=current.version,
            headers={"ETag": f'"{current.version}"'},
        )
    sent = body.model_dump(exclude_unset=True)
    if sent.get("status") == current.reads_as:
        # The status the contract reads as, sent back by an edit form: not a change.
        del sent["status"]
    _check_dates(current, sent)
    if "billing_entity_id" in sent:
        await _require_billing_entity(session, sent["billing_entity_id"])
    changes = {name: value for name, value in sent.items() if getattr(current, name) != value}
    if changes:
        if not await repository.update_contract(session, contract_id, changes, at=at):
            raise await _duplicate(session, payer_id, changes["contract_number"])
        await _audit(session, AuditAction.UPDATE, contract_id, list(changes), actor=actor, at=at)
    return await get_contract(session, contract_id, today=today)
