"""eligibility.eligibility_check, eligibility.inbound_file, eligibility.idempotency_key

Revision ID: s0004
Revises: s0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "s0004"
down_revision: str | None = "s0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "eligibility_check",
        sa.Column(
            "check_id", sa.Uuid(), nullable=False, server_default=sa.text("gen_random_uuid()")
        ),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("coverage_policy_id", sa.Uuid(), nullable=False),
        sa.Column("payer_id", sa.Uuid(), nullable=False),
        sa.Column("trading_partner_id", sa.Uuid(), nullable=True),
        sa.Column("service_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("retryable", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("coverage_status", sa.String(10), nullable=True),
        sa.Column(
            "anomalies", postgresql.ARRAY(sa.String(40)), nullable=False, server_default="{}"
        ),
        sa.Column(
            "benefits",
            postgresql.JSONB(),
            nullable=False,
            server_default=sa.text("'[]'::jsonb"),
        ),
        sa.Column("plan", postgresql.JSONB(), nullable=True),
        sa.Column(
            "rejects", postgresql.JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")
        ),
        sa.Column(
            "other_payers",
            postgresql.JSONB(),
            nullable=False,
            server_default=sa.text("'[]'::jsonb"),
        ),
        sa.Column("inquiry", postgresql.JSONB(), nullable=True),
        sa.Column("identity", postgresql.JSONB(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("trace_number", sa.String(50), nullable=False),
        sa.Column("control_number", sa.Integer(), nullable=True),
        sa.Column("request_x12", sa.Text(), nullable=True),
        sa.Column("response_x12", sa.Text(), nullable=True),
        sa.Column("response_kind", sa.String(3), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("elapsed_ms", sa.Double(), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("check_id", name=op.f("pk_eligibility_check")),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.member.member_id"],
            name=op.f("fk_eligibility_check_member_id_member"),
        ),
        sa.ForeignKeyConstraint(
            ["coverage_policy_id"],
            ["member.coverage_policy.coverage_policy_id"],
            name=op.f("fk_eligibility_check_coverage_policy_id_coverage_policy"),
        ),
        sa.ForeignKeyConstraint(
            ["payer_id"], ["ref.payer.payer_id"], name=op.f("fk_eligibility_check_payer_id_payer")
        ),
        sa.ForeignKeyConstraint(
            ["trading_partner_id"],
            ["eligibility.trading_partner.trading_partner_id"],
            name=op.f("fk_eligibility_check_trading_partner_id_trading_partner"),
        ),
        sa.UniqueConstraint("trace_number", name=op.f("uq_eligibility_check_trace_number")),
        sa.CheckConstraint(
            "status IN ('SUBMITTED', 'RECEIVED', 'FAILED')",
            name=op.f("ck_eligibility_check_status"),
        ),
        sa.CheckConstraint(
            "coverage_status IS NULL OR coverage_status IN "
            "('ACTIVE', 'INACTIVE', 'NOT_FOUND', 'UNKNOWN')",
            name=op.f("ck_eligibility_check_coverage_status"),
        ),
        sa.CheckConstraint(
            "response_kind IS NULL OR response_kind IN ('271', '999', 'TA1')",
            name=op.f("ck_eligibility_check_response_kind"),
        ),
        schema="eligibility",
    )
    op.create_index(
        "ix_eligibility_check_member_id_created_at",
        "eligibility_check",
        ["member_id", "created_at", "check_id"],
        schema="eligibility",
    )
    op.create_index(
        "ix_eligibility_check_received_member_payer",
        "eligibility_check",
        ["member_id", "payer_id", "received_at"],
        schema="eligibility",
        postgresql_where=sa.text("status = 'RECEIVED'"),
    )
    op.create_index(
        "ix_eligibility_check_partner_control_number",
        "eligibility_check",
        ["trading_partner_id", "control_number"],
        schema="eligibility",
    )

    op.create_table(
        "inbound_file",
        sa.Column(
            "inbound_file_id",
            sa.Uuid(),
            nullable=False,
            server_default=sa.text("gen_random_uuid()"),
        ),
        sa.Column("trading_partner_id", sa.Uuid(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_type", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("check_ids", postgresql.ARRAY(sa.Uuid()), nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("inbound_file_id", name=op.f("pk_inbound_file")),
        sa.ForeignKeyConstraint(
            ["trading_partner_id"],
            ["eligibility.trading_partner.trading_partner_id"],
            name=op.f("fk_inbound_file_trading_partner_id_trading_partner"),
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("digest", name=op.f("uq_inbound_file_digest")),
        sa.CheckConstraint(
            "outcome IN ('MATCHED', 'UNMATCHED', 'UNREADABLE')",
            name=op.f("ck_inbound_file_outcome"),
        ),
        schema="eligibility",
    )
    op.create_index(
        "ix_inbound_file_received_at", "inbound_file", ["received_at"], schema="eligibility"
    )

    op.create_table(
        "idempotency_key",
        sa.Column("scope", sa.String(300), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("status_code", sa.SmallInteger(), nullable=True),
        sa.Column("response", postgresql.JSONB(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_idempotency_key")),
        schema="eligibility",
    )
    op.create_index(
        "ix_idempotency_key_created_at", "idempotency_key", ["created_at"], schema="eligibility"
    )


def downgrade() -> None:
    op.drop_table("idempotency_key", schema="eligibility")
    op.drop_table("inbound_file", schema="eligibility")
    op.drop_table("eligibility_check", schema="eligibility")
