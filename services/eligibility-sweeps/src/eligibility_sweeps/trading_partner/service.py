"""Trading-partner configuration: payers that must exist, unambiguous payer routing, a
name unique per tenant, secrets encrypted or hashed before they reach a row. Every
change is audited (field names only) in its transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.audit import audit_change
from eligibility_sweeps.models import AuthType
from eligibility_sweeps.trading_partner import repository
from eligibility_sweeps.trading_partner.credentials import (
    SecretBox,
    credential_hash,
    new_inbound_credential,
    require_box,
)
from eligibility_sweeps.trading_partner.schemas import (
    AuthBasic,
    AuthBasicRead,
    AuthBearer,
    AuthBearerRead,
    AuthIn,
    AuthNoneRead,
    AuthRead,
    InboundCredential,
    PayerLimit,
    TradingPartnerCreate,
    TradingPartnerCreated,
    TradingPartnerRead,
    TradingPartnerUpdate,
)
from rcm_kit.audit import AuditAction
from rcm_kit.auth import Principal
from rcm_kit.errors import Conflict, InvalidFields, Loc, NotFound
from rcm_kit.pagination import Page
from rcm_reference.models import payer
from rcm_reference.repository import existing_ids

_COLUMNS = (
    "name",
    "transport",
    "endpoint_url",
    "sender_id",
    "receiver_id",
    "usage_indicator",
    "timeout_seconds",
    "max_requests_per_second",
    "active",
)
NOT_FOUND = "No trading partner with this trading_partner_id in your organization."

ENTITY = "trading_partner"


class TradingPartnerNotFound(NotFound):
    title = "Trading partner not found"


class DuplicateTradingPartnerName(Conflict):
    title = "Duplicate trading partner name"


class PayerAlreadyRouted(Conflict):
    title = "Payer already routed"


class PartnerInUse(Conflict):
    title = "Trading partner in use"


def _auth_read(row: Any) -> AuthRead:
    if row.auth_type == AuthType.BASIC:
        return AuthBasicRead(username=row.auth_username)
    if row.auth_type == AuthType.BEARER:
        return AuthBearerRead()
    return AuthNoneRead()


def _read(row: Any, payers: list[Any]) -> TradingPartnerRead:
    return TradingPartnerRead(
        trading_partner_id=row.trading_partner_id,
        name=row.name,
        transport=row.transport,
        endpoint_url=row.endpoint_url,
        auth=_auth_read(row),
        sender_id=row.sender_id,
        receiver_id=row.receiver_id,
        usage_indicator=row.usage_indicator,
        payer_ids=[p.payer_id for p in payers],
        timeout_seconds=row.timeout_seconds,
        max_requests_per_second=row.max_requests_per_second,
        payer_limits=[
            PayerLimit.model_validate(p)
            for p in payers
            if p.max_requests_per_second is not None or p.daily_request_cap is not None
        ],
        active=row.active,
        has_inbound_credential=row.inbound_credential_hash is not None,
        inbound_credential_created_at=row.inbound_credential_created_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _auth_columns(auth: AuthIn, box: SecretBox | None) -> dict[str, Any]:
    if isinstance(auth, AuthBasic):
        secret = require_box(box).encrypt(auth.password.get_secret_value())
        return {
            "auth_type": "basic",
            "auth_username": auth.username,
            "auth_secret_encrypted": secret,
        }
    if isinstance(auth, AuthBearer):
        secret = require_box(box).encrypt(auth.token.get_secret_value())
        return {"auth_type": "bearer", "auth_username": None, "auth_secret_encrypted": secret}
    return {"auth_type": "none", "auth_username": None, "auth_secret_encrypted": None}


def _routing_rows(payer_ids: list[UUID], limits: list[PayerLimit]) -> list[dict[str, Any]]:
    by_payer = {limit.payer_id: limit for limit in limits}
    rows = []
    for payer_id in sorted(payer_ids):
        limit = by_payer.get(payer_id)
        rows.append(
            {
                "payer_id": payer_id,
                "max_requests_per_second": limit.max_requests_per_second if limit else None,
                "daily_request_cap": limit.daily_request_cap if limit else None,
            }
        )
    return rows


def _limited(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        row
        for row in rows
        if row["max_requests_per_second"] is not None or row["daily_request_cap"] is not None
    ]


async def _check_payers(
    session: AsyncSession,
    payer_ids: list[UUID] | None,
    limits: list[PayerLimit] | None,
    *,
    routed: list[UUID],
) -> None:
    """Unknown payers, and limits for payers the partner does not route: 422 naming each.
    ``routed`` is the partner's payer set after the change."""
    errors: list[tuple[Loc, str]] = []
    known = await existing_ids(
        session, payer, list({*(payer_ids or []), *(x.payer_id for x in limits or [])})
    )
    for index, payer_id in enumerate(payer_ids or []):
        if payer_id not in known:
            errors.append((["payer_ids", index], "no payer with this id in your organization"))
    for index, limit in enumerate(limits or []):
        if limit.payer_id not in known:
            errors.append(
                (["payer_limits", index, "payer_id"], "no payer with this id in your organization")
            )
        elif limit.payer_id not in routed:
            errors.append(
                (["payer_limits", index, "payer_id"], "must be one of the partner's payer_ids")
            )
    if errors:
        raise InvalidFields(errors)


async def _check_routing(
    session: AsyncSession, payer_ids: list[UUID], *, excluding: UUID | None
) -> None:
    """An ACTIVE partner's payers may not be routed by another ACTIVE partner."""
    await repository.lock_routing(session)
    conflicts = await repository.routing_conflicts(session, payer_ids, excluding=excluding)
    if conflicts:
        first = conflicts[0]
        raise PayerAlreadyRouted(
            f"Payer {first.payer_code} is already routed through the active trading partner "
            f"{first.name!r} ({first.trading_partner_id}); a payer goes through one active "
            "partner only. Remove it there or deactivate that partner first.",
            payer_id=str(first.payer_id),
            conflicting_trading_partner_id=str(first.trading_partner_id),
        )


async def _duplicate_name(session: AsyncSession, name: str) -> DuplicateTradingPartnerName:
    existing = await repository.partner_id_by_name(session, name)
    return DuplicateTradingPartnerName(
        f"Trading partner {existing} already has the name {name!r}.",
        existing_trading_partner_id=str(existing) if existing else None,
    )


async def list_partners(
    session: AsyncSession, *, cursor: str | None, limit: int
) -> Page[TradingPartnerRead]:
    rows, next_cursor = await repository.list_partners(session, cursor=cursor, limit=limit)
    payers = await repository.payers_of(session, [row.trading_partner_id for row in rows])
    items = [_read(row, payers.get(row.trading_partner_id, [])) for row in rows]
    return Page(items=items, next_cursor=next_cursor)


async def get_partner(session: AsyncSession, trading_partner_id: UUID) -> TradingPartnerRead:
    row = await repository.get_partner(session, trading_partner_id)
    if row is None:
        raise TradingPartnerNotFound(NOT_FOUND)
    payers = await repository.payers_of(session, [trading_partner_id])
    return _read(row, payers.get(trading_partner_id, []))


async def create_partner(
    session: AsyncSession,
    body: TradingPartnerCreate,
    *,
    box: SecretBox | None,
    actor: Principal,
    at: datetime,
) -> TradingPartnerCreated:
    await _check_payers(session, body.payer_ids, body.payer_limits, routed=body.payer_ids)
    if body.active:
        await _check_routing(session, body.payer_ids, excluding=None)
    credential = new_inbound_credential(actor.tenant_id)
    values = {
        **{name: getattr(body, name) for name in _COLUMNS},
        **_auth_columns(body.auth, box),
        "inbound_credential_hash": credential_hash(credential),
        "inbound_credential_created_at": at,
        "created_at": at,
        "updated_at": at,
    }
    new_id = await repository.insert_partner(session, values)
    if new_id is None:
        raise await _duplicate_name(session, body.name)
    await repository.replace_payers(
        session, new_id, _routing_rows(body.payer_ids, body.payer_limits)
    )
    fields = [*_COLUMNS, "auth", "payer_ids", "payer_limits", "inbound_credential"]
    await audit_change(session, AuditAction.CREATE, ENTITY, new_id, fields, actor=actor, at=at)
    created = await get_partner(session, new_id)
    return TradingPartnerCreated(**created.model_dump(), inbound_credential=credential)


async def update_partner(
    session: AsyncSession,
    trading_partner_id: UUID,
    body: TradingPartnerUpdate,
    *,
    box: SecretBox | None,
    actor: Principal,
    at: datetime,
) -> TradingPartnerRead:
    current = await repository.lock_partner(session, trading_partner_id)
    if current is None:
        raise TradingPartnerNotFound(NOT_FOUND)
    sent = body.model_fields_set
    stored = (await repository.payers_of(session, [trading_partner_id])).get(trading_partner_id, [])
    payer_ids = body.payer_ids if body.payer_ids is not None else [p.payer_id for p in stored]
    if body.payer_limits is not None:
        limits = body.payer_limits
    else:  # kept for the payers that stay
        limits = [PayerLimit.model_validate(p) for p in stored if p.payer_id in payer_ids]
    await _check_payers(session, body.payer_ids, body.payer_limits, routed=payer_ids)

    changes = {
        name: getattr(body, name)
        for name in _COLUMNS
        if name in sent and getattr(body, name) != getattr(current, name)
    }
    changed = list(changes)
    if body.auth is not None:
        changes.update(_auth_columns(body.auth, box))
        changed.append("auth")  # a new secret cannot be compared with the old one
    new_rows = _routing_rows(payer_ids, limits)
    old_rows = _routing_rows(
        [p.payer_id for p in stored], [PayerLimit.model_validate(p) for p in stored]
    )
    if [r["payer_id"] for r in new_rows] != [r["payer_id"] for r in old_rows]:
        changed.append("payer_ids")
    if _limited(new_rows) != _limited(old_rows):
        changed.append("payer_limits")

    if changes.get("active", current.active) and ("active" in changes or "payer_ids" in changed):
        await _check_routing(session, payer_ids, excluding=trading_partner_id)
    touched = bool(changes) or new_rows != old_rows
    if touched and not await repository.update_partner(session, trading_partner_id, changes, at=at):
        raise await _duplicate_name(session, changes["name"])
    if new_rows != old_rows:
        await repository.replace_payers(session, trading_partner_id, new_rows)
    if changed:
        await audit_change(
            session, AuditAction.UPDATE, ENTITY, trading_partner_id, changed, actor=actor, at=at
        )
    return await get_partner(session, trading_partner_id)


async def delete_partner(
    session: AsyncSession, trading_partner_id: UUID, *, actor: Principal, at: datetime
) -> None:
    """Delete a partner that never carried a check; one that did keeps its history and
    can only be deactivated (409 saying so)."""
    stored = await repository.lock_partner(session, trading_partner_id)
    if stored is None:
        raise TradingPartnerNotFound(NOT_FOUND)
    if await repository.has_checks(session, trading_partner_id):
        raise PartnerInUse(
            f"Trading partner {stored.name!r} has carried eligibility checks, whose history"
            " names it; set active to false instead of deleting it"
        )
    await repository.delete_partner(session, trading_partner_id)
    await audit_change(
        session, AuditAction.DELETE, ENTITY, trading_partner_id, [], actor=actor, at=at
    )


async def rotate_inbound_credential(
    session: AsyncSession, trading_partner_id: UUID, *, actor: Principal, at: datetime
) -> InboundCredential:
    if await repository.lock_partner(session, trading_partner_id) is None:
        raise TradingPartnerNotFound(NOT_FOUND)
    credential = new_inbound_credential(actor.tenant_id)
    await repository.set_inbound_credential(
        session, trading_partner_id, credential_hash(credential), at=at
    )
    await audit_change(
        session,
        AuditAction.UPDATE,
        ENTITY,
        trading_partner_id,
        ["inbound_credential"],
        actor=actor,
        at=at,
    )
    return InboundCredential(
        trading_partner_id=trading_partner_id,
        inbound_credential=credential,
        inbound_credential_created_at=at,
    )
