"""``billing.fee_schedule`` (linked to a contract or not) and its lines."""

from __future__ import annotations

import sqlalchemy as sa

from contract_registry.models.base import NIL_UUID, metadata, timestamps, uuid_pk
from contract_registry.models.payer_contract import payer_contract

fee_schedule = sa.Table(
    "fee_schedule",
    metadata,
    uuid_pk("fee_schedule_id"),
    # Null: a schedule not (yet) linked to a contract.
    sa.Column(
        "contract_id",
        sa.Uuid,
        sa.ForeignKey(payer_contract.c.contract_id, ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("effective_from", sa.Date, nullable=False),
    sa.Column("effective_to", sa.Date, nullable=True),
    *timestamps(),
    sa.CheckConstraint(
        "effective_to IS NULL OR effective_to >= effective_from", name="effective_dates"
    ),
)

# A schedule's natural key is (contract, name), unlinked schedules included.
sa.Index(
    "uq_fee_schedule_contract_name",
    sa.func.coalesce(fee_schedule.c.contract_id, sa.text(f"'{NIL_UUID}'::uuid")),
    fee_schedule.c.name,
    unique=True,
)
sa.Index("ix_fee_schedule_contract_id", fee_schedule.c.contract_id)

fee_schedule_line = sa.Table(
    "fee_schedule_line",
    metadata,
    uuid_pk("fee_schedule_line_id"),
    sa.Column(
        "fee_schedule_id",
        sa.Uuid,
        sa.ForeignKey(fee_schedule.c.fee_schedule_id, ondelete="CASCADE"),
        nullable=False,
    ),
    # CPT/HCPCS code and modifier ('' when none, so the natural key stays unique).
    sa.Column("procedure_code", sa.String(10), nullable=False),
    sa.Column("modifier", sa.String(2), nullable=False, server_default=sa.text("''")),
    sa.Column("amount", sa.Numeric(12, 2), nullable=False),
    *timestamps(),
    sa.UniqueConstraint("fee_schedule_id", "procedure_code", "modifier"),
    sa.CheckConstraint("amount >= 0", name="amount"),
)
