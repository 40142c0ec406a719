"""ref.payer, ref.billing_entity, ref.facility

Revision ID: r0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "r0001"
down_revision: str | None = None
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


def _id(name: str) -> sa.Column:
    return sa.Column(name, sa.Uuid(), nullable=False, server_default=sa.text("gen_random_uuid()"))


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS ref")
    op.create_table(
        "payer",
        _id("payer_id"),
        sa.Column("payer_code", sa.String(80), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        *_timestamps(),
        sa.PrimaryKeyConstraint("payer_id", name="pk_payer"),
        sa.UniqueConstraint("payer_code", name="uq_payer_payer_code"),
        schema="ref",
    )
    op.create_table(
        "billing_entity",
        _id("billing_entity_id"),
        sa.Column("billing_entity_code", sa.String(80), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("npi", sa.String(10), nullable=True),
        sa.Column("tax_id", sa.String(20), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("billing_entity_id", name="pk_billing_entity"),
        sa.UniqueConstraint("billing_entity_code", name="uq_billing_entity_billing_entity_code"),
        schema="ref",
    )
    op.create_table(
        "facility",
        _id("facility_id"),
        sa.Column("facility_code", sa.String(80), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("npi", sa.String(10), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("facility_id", name="pk_facility"),
        sa.UniqueConstraint("facility_code", name="uq_facility_facility_code"),
        schema="ref",
    )
    op.create_index("ix_payer_name_id", "payer", ["name", "payer_id"], schema="ref")
    op.create_index(
        "ix_billing_entity_name_id", "billing_entity", ["name", "billing_entity_id"], schema="ref"
    )
    op.create_index("ix_facility_name_id", "facility", ["name", "facility_id"], schema="ref")


def downgrade() -> None:
    op.drop_table("facility", schema="ref")
    op.drop_table("billing_entity", schema="ref")
    op.drop_table("payer", schema="ref")
    op.execute("DROP SCHEMA IF EXISTS ref")
