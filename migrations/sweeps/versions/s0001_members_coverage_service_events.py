"""member.member, member.coverage_policy, service.service_event, eligibility.audit_event

Revision ID: s0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "s0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMAS = ("member", "service", "eligibility")


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
    for schema in SCHEMAS:
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")

    op.create_table(
        "member",
        _id("member_id"),
        sa.Column("external_id", sa.String(80), nullable=False),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=False),
        sa.Column("gender", sa.String(1), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("member_id", name="pk_member"),
        sa.UniqueConstraint("external_id", name="uq_member_external_id"),
        sa.CheckConstraint("gender IN ('F', 'M', 'U')", name=op.f("ck_member_gender")),
        schema="member",
    )
    op.create_index(
        "ix_member_name_id", "member", ["last_name", "first_name", "member_id"], schema="member"
    )

    op.create_table(
        "coverage_policy",
        _id("coverage_policy_id"),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("payer_id", sa.Uuid(), nullable=False),
        sa.Column("subscriber_id", sa.String(80), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("effective_to", sa.Date(), nullable=True),
        sa.Column("priority", sa.SmallInteger(), nullable=False, server_default=sa.text("1")),
        sa.Column("relationship", sa.String(10), nullable=False, server_default=sa.text("'self'")),
        sa.Column("subscriber_first_name", sa.String(100), nullable=True),
        sa.Column("subscriber_last_name", sa.String(100), nullable=True),
        sa.Column("subscriber_date_of_birth", sa.Date(), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("coverage_policy_id", name="pk_coverage_policy"),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.member.member_id"],
            name="fk_coverage_policy_member_id_member",
        ),
        sa.ForeignKeyConstraint(
            ["payer_id"], ["ref.payer.payer_id"], name="fk_coverage_policy_payer_id_payer"
        ),
        sa.UniqueConstraint(
            "member_id",
            "payer_id",
            "subscriber_id",
            name="uq_coverage_policy_member_id_payer_id_subscriber_id",
        ),
        sa.CheckConstraint(
            "effective_to >= effective_from", name=op.f("ck_coverage_policy_effective_dates")
        ),
        sa.CheckConstraint("priority >= 1", name=op.f("ck_coverage_policy_priority")),
        sa.CheckConstraint(
            "relationship IN ('self', 'spouse', 'child', 'other')",
            name=op.f("ck_coverage_policy_relationship"),
        ),
        sa.CheckConstraint(
            "relationship = 'self' OR (subscriber_first_name IS NOT NULL"
            " AND subscriber_last_name IS NOT NULL AND subscriber_date_of_birth IS NOT NULL)",
            name=op.f("ck_coverage_policy_dependent_subscriber"),
        ),
        schema="member",
    )
    op.create_index(
        "ix_coverage_policy_member_id_effective_from",
        "coverage_policy",
        ["member_id", "effective_from"],
        schema="member",
    )

    op.create_table(
        "service_event",
        _id("service_event_id"),
        sa.Column("external_id", sa.String(80), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("facility_id", sa.Uuid(), nullable=False),
        sa.Column("service_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("service_event_id", name="pk_service_event"),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.member.member_id"], name="fk_service_event_member_id_member"
        ),
        sa.ForeignKeyConstraint(
            ["facility_id"],
            ["ref.facility.facility_id"],
            name="fk_service_event_facility_id_facility",
        ),
        sa.UniqueConstraint("external_id", name="uq_service_event_external_id"),
        sa.CheckConstraint(
            "status IN ('SCHEDULED', 'CHECKED_IN', 'COMPLETED', 'CANCELLED', 'NO_SHOW')",
            name=op.f("ck_service_event_status"),
        ),
        schema="service",
    )
    op.create_index(
        "ix_service_event_member_id_service_date",
        "service_event",
        ["member_id", "service_date"],
        schema="service",
    )
    op.create_index(
        "ix_service_event_status_service_date",
        "service_event",
        ["status", "service_date"],
        schema="service",
    )

    # The kit's audit table shape (rcm_kit.audit.audit_table), in the eligibility schema.
    op.create_table(
        "audit_event",
        sa.Column("audit_event_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("entity_type", sa.String(60), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column(
            "detail",
            postgresql.JSONB(),
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
        ),
        sa.PrimaryKeyConstraint("audit_event_id", name="pk_audit_event"),
        schema="eligibility",
    )
    op.create_index(
        "ix_audit_event_entity",
        "audit_event",
        ["entity_type", "entity_id", "occurred_at"],
        schema="eligibility",
    )
    op.create_index(
        "ix_audit_event_occurred_at", "audit_event", ["occurred_at"], schema="eligibility"
    )


def downgrade() -> None:
    op.drop_table("audit_event", schema="eligibility")
    op.drop_table("service_event", schema="service")
    op.drop_table("coverage_policy", schema="member")
    op.drop_table("member", schema="member")
    # No CASCADE: a schema that is not empty here means a later revision left something.
    for schema in reversed(SCHEMAS):
        op.execute(f"DROP SCHEMA IF EXISTS {schema}")
