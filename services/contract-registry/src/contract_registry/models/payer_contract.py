"""``billing.payer_contract``: a contract between a billing entity and a payer."""

from __future__ import annotations

import enum

import sqlalchemy as sa

from contract_registry.models.base import metadata, one_of, timestamps, uuid_pk
from rcm_reference.models import billing_entity, payer


class ContractStatus(enum.StrEnum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    TERMINATED = "TERMINATED"


payer_contract = sa.Table(
    "payer_contract",
    metadata,
    uuid_pk("contract_id"),
    sa.Column("payer_id", sa.Uuid, sa.ForeignKey(payer.c.payer_id), nullable=False),
    sa.Column(
        "billing_entity_id",
        sa.Uuid,
        sa.ForeignKey(billing_entity.c.billing_entity_id),
        nullable=False,
    ),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("contract_number", sa.String(80), nullable=False),
    # As stored. An ACTIVE contract whose effective_to has passed *reads* as EXPIRED.
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("effective_from", sa.Date, nullable=False),
    sa.Column("effective_to", sa.Date, nullable=True),
    # Optimistic concurrency: bumped by every change, compared with If-Match.
    sa.Column("version", sa.Integer, nullable=False, server_default=sa.text("1")),
    *timestamps(),
    sa.UniqueConstraint("payer_id", "contract_number"),
    sa.CheckConstraint(one_of("status", tuple(ContractStatus)), name="status"),
    sa.CheckConstraint(
        "effective_to IS NULL OR effective_to >= effective_from", name="effective_dates"
    ),
    sa.CheckConstraint("version >= 1", name="version"),
)

# The list's order: effective_to ascending, open-ended last, then id.
sa.Index(
    "ix_payer_contract_effective_to_id", payer_contract.c.effective_to, payer_contract.c.contract_id
)
sa.Index("ix_payer_contract_billing_entity_id", payer_contract.c.billing_entity_id)
sa.Index(
    "ix_payer_contract_status_effective_to",
    payer_contract.c.status,
    payer_contract.c.effective_to,
)
