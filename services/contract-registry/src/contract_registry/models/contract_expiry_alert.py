"""``billing.contract_expiry_alert`` (tenant migration 114 of the product document) and the
delivery history that is also the once-a-day ledger."""

from __future__ import annotations

import enum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from contract_registry.models.base import NIL_UUID, metadata, one_of, timestamps, uuid_pk
from rcm_reference.models import billing_entity, payer

LEAD_DAYS = (30, 60, 90)


class AlertStatus(enum.StrEnum):
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    NO_CONTRACTS = "NO_CONTRACTS"


class DeliveryKind(enum.StrEnum):
    SCHEDULED = "SCHEDULED"
    TEST = "TEST"


class DeliveryStatus(enum.StrEnum):
    SENDING = "SENDING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    NO_CONTRACTS = "NO_CONTRACTS"


contract_expiry_alert = sa.Table(
    "contract_expiry_alert",
    metadata,
    uuid_pk("alert_id"),
    # Null = all payers / all billing entities.
    sa.Column(
        "payer_id", sa.Uuid, sa.ForeignKey(payer.c.payer_id, ondelete="CASCADE"), nullable=True
    ),
    sa.Column(
        "billing_entity_id",
        sa.Uuid,
        sa.ForeignKey(billing_entity.c.billing_entity_id, ondelete="CASCADE"),
        nullable=True,
    ),
    sa.Column("lead_days", sa.Integer, nullable=False),
    sa.Column("recipients", JSONB, nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    # When the loop last sent this alert's scheduled mail (never stamped by a test send).
    sa.Column("last_fired_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_status", sa.String(20), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    *timestamps(),
    sa.CheckConstraint("lead_days IN (30, 60, 90)", name="lead_days"),
    sa.CheckConstraint(
        "jsonb_typeof(recipients) = 'array' AND jsonb_array_length(recipients) BETWEEN 1 AND 10",
        name="recipients",
    ),
    sa.CheckConstraint("char_length(subject) >= 1", name="subject"),
    sa.CheckConstraint(
        "last_status IS NULL OR " + one_of("last_status", tuple(AlertStatus)), name="last_status"
    ),
)

# One alert per (scope, lead_days), "all" (NULL) included: the product document's
# partial-unique index, written as a coalesced expression so it works on every version.
sa.Index(
    "uq_contract_expiry_alert_scope",
    sa.func.coalesce(contract_expiry_alert.c.payer_id, sa.text(f"'{NIL_UUID}'::uuid")),
    sa.func.coalesce(contract_expiry_alert.c.billing_entity_id, sa.text(f"'{NIL_UUID}'::uuid")),
    contract_expiry_alert.c.lead_days,
    unique=True,
)

contract_expiry_alert_delivery = sa.Table(
    "contract_expiry_alert_delivery",
    metadata,
    uuid_pk("delivery_id"),
    sa.Column(
        "alert_id",
        sa.Uuid,
        sa.ForeignKey(contract_expiry_alert.c.alert_id, ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    # The tenant's calendar day the attempt belongs to: the unit of "once a day".
    sa.Column("local_day", sa.Date, nullable=False),
    sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("matched_contracts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("matched_contract_ids", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("recipients", JSONB, nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("message_id", sa.String(255), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    # A FAILED scheduled attempt: when the dispatcher may try again (backoff). NULL on a
    # FAILED row: not automatically, that day (the outcome of a crashed send is unknown).
    sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
    *timestamps(),
    sa.CheckConstraint(one_of("kind", tuple(DeliveryKind)), name="kind"),
    sa.CheckConstraint(one_of("status", tuple(DeliveryStatus)), name="status"),
)

# The claim: at most one scheduled mail per alert and local day is sending or sent.
sa.Index(
    "uq_alert_delivery_claim",
    contract_expiry_alert_delivery.c.alert_id,
    contract_expiry_alert_delivery.c.local_day,
    unique=True,
    postgresql_where=sa.text("kind = 'SCHEDULED' AND status IN ('SENDING', 'SUCCESS')"),
)
# NO_CONTRACTS is recorded at most once a day per alert.
sa.Index(
    "uq_alert_delivery_no_contracts",
    contract_expiry_alert_delivery.c.alert_id,
    contract_expiry_alert_delivery.c.local_day,
    unique=True,
    postgresql_where=sa.text("kind = 'SCHEDULED' AND status = 'NO_CONTRACTS'"),
)
# The history, newest first.
sa.Index(
    "ix_alert_delivery_alert_attempted",
    contract_expiry_alert_delivery.c.alert_id,
    contract_expiry_alert_delivery.c.attempted_at,
    contract_expiry_alert_delivery.c.delivery_id,
)
