"""eligibility.control_number_sequence

Revision ID: s0003
Revises: s0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "s0003"
down_revision: str | None = "s0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "control_number_sequence",
        sa.Column("trading_partner_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("last_value", sa.BigInteger(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("trading_partner_id", "kind", name="pk_control_number_sequence"),
        sa.ForeignKeyConstraint(
            ["trading_partner_id"],
            ["eligibility.trading_partner.trading_partner_id"],
            name="fk_control_number_sequence_trading_partner_id_trading_partner",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "kind IN ('interchange', 'group', 'transaction')",
            name=op.f("ck_control_number_sequence_kind"),
        ),
        sa.CheckConstraint(
            "last_value BETWEEN 1 AND 999999999",
            name=op.f("ck_control_number_sequence_last_value"),
        ),
        schema="eligibility",
    )


def downgrade() -> None:
    op.drop_table("control_number_sequence", schema="eligibility")
