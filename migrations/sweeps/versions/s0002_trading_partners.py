"""eligibility.trading_partner, eligibility.trading_partner_payer

Revision ID: s0002
Revises: s0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "s0002"
down_revision: str | None = "s0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column]:
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
        "trading_partner",
        sa.Column(
            "trading_partner_id",
            sa.Uuid(),
            nullable=False,
            server_default=sa.text("gen_random_uuid()"),
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("transport", sa.String(10), nullable=False),
        sa.Column("endpoint_url", sa.String(2000), nullable=False),
        sa.Column("auth_type", sa.String(10), nullable=False, server_default=sa.text("'none'")),
        sa.Column("auth_username", sa.String(200), nullable=True),
        sa.Column("auth_secret_encrypted", sa.Text(), nullable=True),
        sa.Column("sender_id", sa.String(15), nullable=False),
        sa.Column("receiver_id", sa.String(15), nullable=False),
        sa.Column("usage_indicator", sa.String(1), nullable=False, server_default=sa.text("'P'")),
        sa.Column(
            "timeout_seconds", sa.SmallInteger(), nullable=False, server_default=sa.text("20")
        ),
        sa.Column("max_requests_per_second", sa.Double(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("inbound_credential_hash", sa.String(64), nullable=True),
        sa.Column("inbound_credential_created_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("trading_partner_id", name="pk_trading_partner"),
        sa.UniqueConstraint("name", name="uq_trading_partner_name"),
        sa.CheckConstraint(
            "transport IN ('core-mime', 'x12-http')", name=op.f("ck_trading_partner_transport")
        ),
        sa.CheckConstraint(
            "auth_type IN ('none', 'basic', 'bearer')", name=op.f("ck_trading_partner_auth_type")
        ),
        sa.CheckConstraint(
            "(auth_type = 'none' AND auth_username IS NULL AND auth_secret_encrypted IS NULL)"
            " OR (auth_type = 'basic' AND auth_username IS NOT NULL"
            " AND auth_secret_encrypted IS NOT NULL)"
            " OR (auth_type = 'bearer' AND auth_username IS NULL"
            " AND auth_secret_encrypted IS NOT NULL)",
            name=op.f("ck_trading_partner_auth_fields"),
        ),
        sa.CheckConstraint(
            "usage_indicator IN ('T', 'P')", name=op.f("ck_trading_partner_usage_indicator")
        ),
        sa.CheckConstraint(
            "timeout_seconds BETWEEN 1 AND 60", name=op.f("ck_trading_partner_timeout_seconds")
        ),
        sa.CheckConstraint(
            "max_requests_per_second > 0",
            name=op.f("ck_trading_partner_max_requests_per_second"),
        ),
        schema="eligibility",
    )

    op.create_table(
        "trading_partner_payer",
        sa.Column("trading_partner_id", sa.Uuid(), nullable=False),
        sa.Column("payer_id", sa.Uuid(), nullable=False),
        sa.Column("max_requests_per_second", sa.Double(), nullable=True),
        sa.Column("daily_request_cap", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("trading_partner_id", "payer_id", name="pk_trading_partner_payer"),
        sa.ForeignKeyConstraint(
            ["trading_partner_id"],
            ["eligibility.trading_partner.trading_partner_id"],
            name="fk_trading_partner_payer_trading_partner_id_trading_partner",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["payer_id"], ["ref.payer.payer_id"], name="fk_trading_partner_payer_payer_id_payer"
        ),
        sa.CheckConstraint(
            "max_requests_per_second > 0",
            name=op.f("ck_trading_partner_payer_max_requests_per_second"),
        ),
        sa.CheckConstraint(
            "daily_request_cap > 0", name=op.f("ck_trading_partner_payer_daily_request_cap")
        ),
        schema="eligibility",
    )
    op.create_index(
        "ix_trading_partner_payer_payer_id",
        "trading_partner_payer",
        ["payer_id"],
        schema="eligibility",
    )


def downgrade() -> None:
    op.drop_table("trading_partner_payer", schema="eligibility")
    op.drop_table("trading_partner", schema="eligibility")
