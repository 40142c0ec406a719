"""Queries of the expiry-alert delivery ledger (``billing.contract_expiry_alert_delivery``)
and of the alert columns the dispatcher owns (``last_fired_at``, ``last_status``,
``last_error``).

Every instant is a parameter (``now``), never the database's ``now()``, so tests can move
the clock across midnight. The once-a-day guarantee is the partial unique index
``uq_alert_delivery_claim``: ``claim`` inserts with ``ON CONFLICT DO NOTHING`` on it and
reads the answer, it never checks first and inserts after.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contract_registry.models import (
    AlertStatus,
    DeliveryKind,
    DeliveryStatus,
    contract_expiry_alert,
    contract_expiry_alert_delivery,
)
from rcm_kit.pagination import SortKey, page_of, paginate
from rcm_reference.models import billing_entity, payer

alert = contract_expiry_alert
delivery = contract_expiry_alert_delivery

# The predicates of the partial unique indexes, repeated so ON CONFLICT can infer them.
CLAIM_INDEX_WHERE = sa.text("kind = 'SCHEDULED' AND status IN ('SENDING', 'SUCCESS')")
NO_CONTRACTS_INDEX_WHERE = sa.text("kind = 'SCHEDULED' AND status = 'NO_CONTRACTS'")


@dataclass(frozen=True)
class AlertRow:
    alert_id: UUID
    payer_id: UUID | None
    billing_entity_id: UUID | None
    lead_days: int
    recipients: list[str]
    subject: str
    active: bool


@dataclass(frozen=True)
class Claim:
    delivery_id: UUID
    alert_id: UUID
    recipients: list[str]
    subject: str


def _alert_row(row: Any) -> AlertRow:
    return AlertRow(
        alert_id=row.alert_id,
        payer_id=row.payer_id,
        billing_entity_id=row.billing_entity_id,
        lead_days=row.lead_days,
        recipients=list(row.recipients),
        subject=row.subject,
        active=row.active,
    )


_ALERT_COLUMNS = (
    alert.c.alert_id,
    alert.c.payer_id,
    alert.c.billing_entity_id,
    alert.c.lead_days,
    alert.c.recipients,
    alert.c.subject,
    alert.c.active,
)


def _scheduled_today(local_day: date) -> sa.ColumnElement[bool]:
    return sa.and_(
        delivery.c.alert_id == alert.c.alert_id,
        delivery.c.kind == DeliveryKind.SCHEDULED.value,
        delivery.c.local_day == local_day,
    )


def _blocking_failure(local_day: date, now: datetime) -> sa.Exists:
    """A failed scheduled send today whose retry time has not come (or never will)."""
    return sa.exists().where(
        _scheduled_today(local_day),
        delivery.c.status == DeliveryStatus.FAILED.value,
        sa.or_(delivery.c.retry_at.is_(None), delivery.c.retry_at > now),
    )


async def due_alerts(session: AsyncSession, *, local_day: date, now: datetime) -> list[AlertRow]:
    """Active alerts with no scheduled mail sending or sent on ``local_day``, and not
    waiting out a failure's backoff."""
    claimed = sa.exists().where(
        _scheduled_today(local_day),
        delivery.c.status.in_([DeliveryStatus.SENDING.value, DeliveryStatus.SUCCESS.value]),
    )
    query = (
        sa.select(*_ALERT_COLUMNS)
        .where(alert.c.active, ~claimed, ~_blocking_failure(local_day, now))
        .order_by(alert.c.alert_id)
    )
    return [_alert_row(row) for row in (await session.execute(query)).all()]


async def get_alert(session: AsyncSession, alert_id: UUID) -> AlertRow | None:
    row = (
        await session.execute(sa.select(*_ALERT_COLUMNS).where(alert.c.alert_id == alert_id))
    ).first()
    return _alert_row(row) if row is not None else None


def _unnest(*columns: tuple[str, Any, Sequence[Any]]) -> Any:
    """Rows from parallel arrays (``unnest($1, $2, ...) AS v(a, b, ...)``): one statement
    for any number of rows, compiled once."""
    arrays = [
        sa.bindparam(f"v_{name}", list(values), type_=ARRAY(type_))
        for name, type_, values in columns
    ]
    return (
        sa.func.unnest(*arrays)
        .table_valued(*(sa.column(name, type_) for name, type_, _ in columns))
        .render_derived(name="v", with_types=False)
    )


@dataclass(frozen=True)
class ClaimRequest:
    alert_id: UUID
    matched_contracts: int
    matched_contract_ids: Sequence[UUID]
    message_id: str


async def claim(
    session: AsyncSession, *, local_day: date, now: datetime, requests: Sequence[ClaimRequest]
) -> list[Claim]:
    """Claim ``local_day`` for each alert's scheduled mail: one SENDING row per alert won.
    An alert is missing from the answer when another dispatcher holds or has used the
    day, or it stopped being due (paused, deleted, waiting out a backoff) since it was
    listed. Commit before sending.

    Rows go in alert id order, so two dispatchers claiming the same alerts wait on each
    other in the same order and never deadlock."""
    if not requests:
        return []
    v = _unnest(
        ("alert_id", sa.Uuid, [r.alert_id for r in requests]),
        ("matched", sa.Integer, [r.matched_contracts for r in requests]),
        (
            "contract_ids",
            sa.Text,
            [json.dumps([str(i) for i in r.matched_contract_ids]) for r in requests],
        ),
        ("message_id", sa.Text, [r.message_id for r in requests]),
    )
    source = (
        sa.select(
            alert.c.alert_id,
            sa.literal(DeliveryKind.SCHEDULED.value),
            sa.literal(DeliveryStatus.SENDING.value),
            sa.literal(local_day, sa.Date),
            sa.literal(now, sa.DateTime(timezone=True)),
            v.c.matched,
            sa.cast(v.c.contract_ids, JSONB),
            alert.c.recipients,
            alert.c.subject,
            v.c.message_id,
        )
        .select_from(alert.join(v, alert.c.alert_id == v.c.alert_id))
        .where(alert.c.active, ~_blocking_failure(local_day, now))
        .order_by(alert.c.alert_id)
    )
    statement = (
        pg_insert(delivery)
        .from_select(
            [
                "alert_id",
                "kind",
                "status",
                "local_day",
                "attempted_at",
                "matched_contracts",
                "matched_contract_ids",
                "recipients",
                "subject",
                "message_id",
            ],
            source,
        )
        .on_conflict_do_nothing(
            index_elements=["alert_id", "local_day"], index_where=CLAIM_INDEX_WHERE
        )
        .returning(
            delivery.c.delivery_id, delivery.c.alert_id, delivery.c.recipients, delivery.c.subject
        )
    )
    rows = (await session.execute(statement)).all()
    return [Claim(r.delivery_id, r.alert_id, list(r.recipients), r.subject) for r in rows]


async def record_no_contracts(
    session: AsyncSession, *, alert_ids: Sequence[UUID], local_day: date, now: datetime
) -> list[UUID]:
    """The day's one NO_CONTRACTS row per alert; returns the alerts that did not have it."""
    if not alert_ids:
        return []
    source = (
        sa.select(
            alert.c.alert_id,
            sa.literal(DeliveryKind.SCHEDULED.value),
            sa.literal(DeliveryStatus.NO_CONTRACTS.value),
            sa.literal(local_day, sa.Date),
            sa.literal(now, sa.DateTime(timezone=True)),
            sa.literal(now, sa.DateTime(timezone=True)),
            sa.literal(0),
            alert.c.recipients,
            alert.c.subject,
        )
        .where(alert.c.alert_id == sa.any_(sa.bindparam("ids", list(alert_ids), ARRAY(sa.Uuid))))
        .order_by(alert.c.alert_id)
    )
    statement = (
        pg_insert(delivery)
        .from_select(
            [
                "alert_id",
                "kind",
                "status",
                "local_day",
                "attempted_at",
                "completed_at",
                "matched_contracts",
                "recipients",
                "subject",
            ],
            source,
        )
        .on_conflict_do_nothing(
            index_elements=["alert_id", "local_day"], index_where=NO_CONTRACTS_INDEX_WHERE
        )
        .returning(delivery.c.alert_id)
    )
    return list((await session.execute(statement)).scalars())


@dataclass(frozen=True)
class Finished:
    """The outcome of one claimed attempt."""

    delivery_id: UUID
    alert_id: UUID
    status: DeliveryStatus
    error: str | None
    retry_at: datetime | None = None


async def finish(
    session: AsyncSession, *, finished: Sequence[Finished], completed_at: datetime
) -> set[UUID]:
    """Close SENDING attempts; returns the delivery ids closed (one that is no longer
    SENDING was expired as abandoned meanwhile and is left as it is)."""
    if not finished:
        return set()
    v = _unnest(
        ("delivery_id", sa.Uuid, [f.delivery_id for f in finished]),
        ("status", sa.Text, [f.status.value for f in finished]),
        ("error", sa.Text, [f.error for f in finished]),
        ("retry_at", sa.DateTime(timezone=True), [f.retry_at for f in finished]),
    )
    statement = (
        sa.update(delivery)
        .where(
            delivery.c.delivery_id == v.c.delivery_id,
            delivery.c.status == DeliveryStatus.SENDING.value,
        )
        .values(
            status=v.c.status,
            error=v.c.error,
            retry_at=v.c.retry_at,
            completed_at=completed_at,
            updated_at=completed_at,
        )
        .returning(delivery.c.delivery_id)
    )
    return set((await session.execute(statement)).scalars())


async def failures_on(
    session: AsyncSession, *, alert_ids: Sequence[UUID], local_day: date
) -> dict[UUID, int]:
    """Failed scheduled attempts per alert on ``local_day`` (for the backoff)."""
    if not alert_ids:
        return {}
    query = (
        sa.select(delivery.c.alert_id, sa.func.count())
        .where(
            delivery.c.alert_id == sa.any_(sa.bindparam("ids", list(alert_ids), ARRAY(sa.Uuid))),
            delivery.c.kind == DeliveryKind.SCHEDULED.value,
            delivery.c.local_day == local_day,
            delivery.c.status == DeliveryStatus.FAILED.value,
        )
        .group_by(delivery.c.alert_id)
    )
    return {row[0]: int(row[1]) for row in (await session.execute(query)).all()}


async def expire_abandoned_claims(
    session: AsyncSession, *, started_before: datetime, now: datetime, error: str
) -> list[tuple[UUID, UUID]]:
    """SENDING claims older than the claim timeout become FAILED with no retry time.
    Returns ``(alert_id, delivery_id)`` pairs."""
    result = await session.execute(
        sa.update(delivery)
        .where(
            delivery.c.kind == DeliveryKind.SCHEDULED.value,
            delivery.c.status == DeliveryStatus.SENDING.value,
            delivery.c.attempted_at < started_before,
        )
        .values(
            status=DeliveryStatus.FAILED.value,
            completed_at=now,
            error=error,
            retry_at=None,
            updated_at=now,
        )
        .returning(delivery.c.alert_id, delivery.c.delivery_id)
    )
    return [(row.alert_id, row.delivery_id) for row in result.all()]


async def insert_attempt(
    session: AsyncSession,
    *,
    delivery_id: UUID,
    alert_id: UUID,
    kind: DeliveryKind,
    status: DeliveryStatus,
    local_day: date,
    attempted_at: datetime,
    completed_at: datetime,
    matched_contract_ids: Sequence[UUID],
    matched_contracts: int,
    recipients: list[str],
    subject: str,
    message_id: str,
    error: str | None,
) -> None:
    """One finished attempt in a single statement (the test sends)."""
    await session.execute(
        sa.insert(delivery).values(
            delivery_id=delivery_id,
            alert_id=alert_id,
            kind=kind.value,
            status=status.value,
            local_day=local_day,
            attempted_at=attempted_at,
            completed_at=completed_at,
            matched_contracts=matched_contracts,
            matched_contract_ids=[str(i) for i in matched_contract_ids],
            recipients=recipients,
            subject=subject,
            message_id=message_id,
            error=error,
        )
    )


async def set_alert_outcome(
    session: AsyncSession,
    alert_ids: Sequence[UUID],
    *,
    status: AlertStatus,
    error: str | None,
    fired_at: datetime | None = None,
) -> None:
    """The same outcome for several alerts. ``last_fired_at`` moves only with
    ``fired_at`` (a scheduled mail that left). ``updated_at`` is left alone: it tells
    when an operator last edited the alert, not when the dispatcher last looked at it."""
    if not alert_ids:
        return
    values: dict[str, Any] = {"last_status": status.value, "last_error": error}
    if fired_at is not None:
        values["last_fired_at"] = fired_at
    statement = (
        sa.update(alert)
        .where(alert.c.alert_id == sa.any_(sa.bindparam("ids", list(alert_ids), ARRAY(sa.Uuid))))
        .values(**values)
    )
    if status is AlertStatus.NO_CONTRACTS:
        # Every tick of a quiet day lands here: write only when something changes.
        statement = statement.where(
            sa.or_(
                alert.c.last_status.is_distinct_from(status.value), alert.c.last_error.is_not(None)
            )
        )
    await session.execute(statement)


@dataclass(frozen=True)
class AlertOutcome:
    alert_id: UUID
    status: AlertStatus
    error: str | None
    fired: bool


async def set_alert_outcomes(
    session: AsyncSession, outcomes: Sequence[AlertOutcome], *, fired_at: datetime
) -> None:
    """Each alert's own outcome in one statement; ``fired`` ones get ``last_fired_at``."""
    if not outcomes:
        return
    v = _unnest(
        ("alert_id", sa.Uuid, [o.alert_id for o in outcomes]),
        ("status", sa.Text, [o.status.value for o in outcomes]),
        ("error", sa.Text, [o.error for o in outcomes]),
        ("fired", sa.Boolean, [o.fired for o in outcomes]),
    )
    await session.execute(
        sa.update(alert)
        .where(alert.c.alert_id == v.c.alert_id)
        .values(
            last_status=v.c.status,
            last_error=v.c.error,
            last_fired_at=sa.case((v.c.fired, fired_at), else_=alert.c.last_fired_at),
        )
    )


async def scope_names(
    session: AsyncSession, *, payer_id: UUID | None, billing_entity_id: UUID | None
) -> tuple[str | None, str | None]:
    """Names of the alert's payer and billing entity (None: all, or no longer there)."""
    payer_name = billing_entity_name = None
    if payer_id is not None:
        payer_name = (
            await session.execute(sa.select(payer.c.name).where(payer.c.payer_id == payer_id))
        ).scalar()
    if billing_entity_id is not None:
        billing_entity_name = (
            await session.execute(
                sa.select(billing_entity.c.name).where(
                    billing_entity.c.billing_entity_id == billing_entity_id
                )
            )
        ).scalar()
    return payer_name, billing_entity_name


async def list_deliveries(
    session: AsyncSession, *, alert_id: UUID, cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """A page of the alert's attempts, newest first."""
    keys = [
        SortKey(delivery.c.attempted_at, descending=True),
        SortKey(delivery.c.delivery_id, descending=True),
    ]
    filters = {"alert_id": str(alert_id)}
    query = sa.select(delivery).where(delivery.c.alert_id == alert_id)
    rows = (
        await session.execute(paginate(query, keys, cursor=cursor, filters=filters, limit=limit))
    ).all()
    return page_of(
        rows,
        limit=limit,
        key_values=lambda row: (row.attempted_at, row.delivery_id),
        filters=filters,
    )
