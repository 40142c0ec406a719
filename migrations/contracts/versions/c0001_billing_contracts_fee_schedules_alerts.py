"""billing contracts, fee schedules, expiry alerts, deliveries

Revision ID: c0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS billing")
    op.create_table(
        "audit_event",
        sa.Column("audit_event_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("entity_type", sa.String(length=60), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column(
            "detail",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("audit_event_id", name=op.f("pk_audit_event")),
        schema="billing",
    )
    op.create_index(
        "ix_audit_event_entity",
        "audit_event",
        ["entity_type", "entity_id", "occurred_at"],
        unique=False,
        schema="billing",
    )
    op.create_index(
        "ix_audit_event_occurred_at", "audit_event", ["occurred_at"], unique=False, schema="billing"
    )
    op.create_table(
        "contract_expiry_alert",
        sa.Column(
            "alert_id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False
        ),
        sa.Column("payer_id", sa.Uuid(), nullable=True),
        sa.Column("billing_entity_id", sa.Uuid(), nullable=True),
        sa.Column("lead_days", sa.Integer(), nullable=False),
        sa.Column("recipients", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("last_fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.String(length=20), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "jsonb_typeof(recipients) = 'array' AND jsonb_array_length(recipients) BETWEEN 1 AND 10",
            name=op.f("ck_contract_expiry_alert_recipients"),
        ),
        sa.CheckConstraint(
            "last_status IS NULL OR last_status IN ('SUCCESS', 'FAILED', 'NO_CONTRACTS')",
            name=op.f("ck_contract_expiry_alert_last_status"),
        ),
        sa.CheckConstraint(
            "char_length(subject) >= 1", name=op.f("ck_contract_expiry_alert_subject")
        ),
        sa.CheckConstraint(
            "lead_days IN (30, 60, 90)", name=op.f("ck_contract_expiry_alert_lead_days")
        ),
        sa.ForeignKeyConstraint(
            ["billing_entity_id"],
            ["ref.billing_entity.billing_entity_id"],
            name=op.f("fk_contract_expiry_alert_billing_entity_id_billing_entity"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["payer_id"],
            ["ref.payer.payer_id"],
            name=op.f("fk_contract_expiry_alert_payer_id_payer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_contract_expiry_alert")),
        schema="billing",
    )
    op.create_index(
        "uq_contract_expiry_alert_scope",
        "contract_expiry_alert",
        [
            sa.literal_column("coalesce(payer_id, '00000000-0000-0000-0000-000000000000'::uuid)"),
            sa.literal_column(
                "coalesce(billing_entity_id, '00000000-0000-0000-0000-000000000000'::uuid)"
            ),
            "lead_days",
        ],
        unique=True,
        schema="billing",
    )
    op.create_table(
        "payer_contract",
        sa.Column(
            "contract_id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False
        ),
        sa.Column("payer_id", sa.Uuid(), nullable=False),
        sa.Column("billing_entity_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("contract_number", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("effective_to", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('DRAFT', 'ACTIVE', 'EXPIRED', 'TERMINATED')",
            name=op.f("ck_payer_contract_status"),
        ),
        sa.CheckConstraint(
            "effective_to IS NULL OR effective_to >= effective_from",
            name=op.f("ck_payer_contract_effective_dates"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_payer_contract_version")),
        sa.ForeignKeyConstraint(
            ["billing_entity_id"],
            ["ref.billing_entity.billing_entity_id"],
            name=op.f("fk_payer_contract_billing_entity_id_billing_entity"),
        ),
        sa.ForeignKeyConstraint(
            ["payer_id"], ["ref.payer.payer_id"], name=op.f("fk_payer_contract_payer_id_payer")
        ),
        sa.PrimaryKeyConstraint("contract_id", name=op.f("pk_payer_contract")),
        sa.UniqueConstraint(
            "payer_id", "contract_number", name=op.f("uq_payer_contract_payer_id_contract_number")
        ),
        schema="billing",
    )
    op.create_index(
        "ix_payer_contract_billing_entity_id",
        "payer_contract",
        ["billing_entity_id"],
        unique=False,
        schema="billing",
    )
    op.create_index(
        "ix_payer_contract_effective_to_id",
        "payer_contract",
        ["effective_to", "contract_id"],
        unique=False,
        schema="billing",
    )
    op.create_index(
        "ix_payer_contract_status_effective_to",
        "payer_contract",
        ["status", "effective_to"],
        unique=False,
        schema="billing",
    )
    op.create_table(
        "contract_expiry_alert_delivery",
        sa.Column(
            "delivery_id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False
        ),
        sa.Column("alert_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("local_day", sa.Date(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("matched_contracts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "matched_contract_ids",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("recipients", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('SCHEDULED', 'TEST')", name=op.f("ck_contract_expiry_alert_delivery_kind")
        ),
        sa.CheckConstraint(
            "status IN ('SENDING', 'SUCCESS', 'FAILED', 'NO_CONTRACTS')",
            name=op.f("ck_contract_expiry_alert_delivery_status"),
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["billing.contract_expiry_alert.alert_id"],
            name=op.f("fk_contract_expiry_alert_delivery_alert_id_contract_expiry_alert"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("delivery_id", name=op.f("pk_contract_expiry_alert_delivery")),
        schema="billing",
    )
    op.create_index(
        "ix_alert_delivery_alert_attempted",
        "contract_expiry_alert_delivery",
        ["alert_id", "attempted_at", "delivery_id"],
        unique=False,
        schema="billing",
    )
    op.create_index(
        "uq_alert_delivery_claim",
        "contract_expiry_alert_delivery",
        ["alert_id", "local_day"],
        unique=True,
        schema="billing",
        postgresql_where=sa.text("kind = 'SCHEDULED' AND status IN ('SENDING', 'SUCCESS')"),
    )
    op.create_index(
        "uq_alert_delivery_no_contracts",
        "contract_expiry_alert_delivery",
        ["alert_id", "local_day"],
        unique=True,
        schema="billing",
        postgresql_where=sa.text("kind = 'SCHEDULED' AND status = 'NO_CONTRACTS'"),
    )
    op.create_table(
        "fee_schedule",
        sa.Column(
            "fee_schedule_id",
            sa.Uuid(),
            server_default=sa.text("gen_random_uuid()"),
            nullable=False,
        ),
        sa.Column("contract_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("effective_to", sa.Date(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "effective_to IS NULL OR effective_to >= effective_from",
            name=op.f("ck_fee_schedule_effective_dates"),
        ),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["billing.payer_contract.contract_id"],
            name=op.f("fk_fee_schedule_contract_id_payer_contract"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("fee_schedule_id", name=op.f("pk_fee_schedule")),
        schema="billing",
    )
    op.create_index(
        "ix_fee_schedule_contract_id",
        "fee_schedule",
        ["contract_id"],
        unique=False,
        schema="billing",
    )
    op.create_index(
        "uq_fee_schedule_contract_name",
        "fee_schedule",
        [
            sa.literal_column(
                "coalesce(contract_id, '00000000-0000-0000-0000-000000000000'::uuid)"
            ),
            "name",
        ],
        unique=True,
        schema="billing",
    )
    op.create_table(
        "fee_schedule_line",
        sa.Column(
            "fee_schedule_line_id",
            sa.Uuid(),
            server_default=sa.text("gen_random_uuid()"),
            nullable=False,
        ),
        sa.Column("fee_schedule_id", sa.Uuid(), nullable=False),
        sa.Column("procedure_code", sa.String(length=10), nullable=False),
        sa.Column("modifier", sa.String(length=2), server_default=sa.text("''"), nullable=False),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_fee_schedule_line_amount")),
        sa.ForeignKeyConstraint(
            ["fee_schedule_id"],
            ["billing.fee_schedule.fee_schedule_id"],
            name=op.f("fk_fee_schedule_line_fee_schedule_id_fee_schedule"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("fee_schedule_line_id", name=op.f("pk_fee_schedule_line")),
        sa.UniqueConstraint(
            "fee_schedule_id",
            "procedure_code",
            "modifier",
            name=op.f("uq_fee_schedule_line_fee_schedule_id_procedure_code_modifier"),
        ),
        schema="billing",
    )


def downgrade() -> None:
    op.drop_table("fee_schedule_line", schema="billing")
    op.drop_index("uq_fee_schedule_contract_name", table_name="fee_schedule", schema="billing")
    op.drop_index("ix_fee_schedule_contract_id", table_name="fee_schedule", schema="billing")
    op.drop_table("fee_schedule", schema="billing")
    op.drop_index(
        "uq_alert_delivery_no_contracts",
        table_name="contract_expiry_alert_delivery",
        schema="billing",
        postgresql_where=sa.text("kind = 'SCHEDULED' AND status = 'NO_CONTRACTS'"),
    )
    op.drop_index(
        "uq_alert_delivery_claim",
        table_name="contract_expiry_alert_delivery",
        schema="billing",
        postgresql_where=sa.text("kind = 'SCHEDULED' AND status IN ('SENDING', 'SUCCESS')"),
    )
    op.drop_index(
        "ix_alert_delivery_alert_attempted",
        table_name="contract_expiry_alert_delivery",
        schema="billing",
    )
    op.drop_table("contract_expiry_alert_delivery", schema="billing")
    op.drop_index(
        "ix_payer_contract_status_effective_to", table_name="payer_contract", schema="billing"
    )
    op.drop_index(
        "ix_payer_contract_effective_to_id", table_name="payer_contract", schema="billing"
    )
    op.drop_index(
        "ix_payer_contract_billing_entity_id", table_name="payer_contract", schema="billing"
    )
    op.drop_table("payer_contract", schema="billing")
    op.drop_index(
        "uq_contract_expiry_alert_scope", table_name="contract_expiry_alert", schema="billing"
    )
    op.drop_table("contract_expiry_alert", schema="billing")
    op.drop_index("ix_audit_event_occurred_at", table_name="audit_event", schema="billing")
    op.drop_index("ix_audit_event_entity", table_name="audit_event", schema="billing")
    op.drop_table("audit_event", schema="billing")
    op.execute("DROP SCHEMA IF EXISTS billing")
