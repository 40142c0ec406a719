"""eligibility.sweep_schedule, eligibility_sweep_run, sweep_run_member, sweep_firing_skip;
eligibility_check.sweep_run_id

Revision ID: s0005
Revises: s0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "s0005"
down_revision: str | None = "s0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "eligibility"


def _now(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _uuid_pk(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.Uuid(), nullable=False, server_default=sa.text("gen_random_uuid()"))


def upgrade() -> None:
    op.create_table(
        "sweep_schedule",
        _uuid_pk("schedule_id"),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("cron", sa.String(120), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False, server_default=sa.text("'UTC'")),
        sa.Column("facility_id", sa.Uuid(), nullable=True),
        sa.Column("window_start_days", sa.Integer(), nullable=False),
        sa.Column("window_end_days", sa.Integer(), nullable=False),
        sa.Column("payer_ids", postgresql.ARRAY(sa.Uuid()), nullable=False, server_default="{}"),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("next_fire_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_fired_at", sa.DateTime(timezone=True), nullable=True),
        _now("created_at"),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("schedule_id", name=op.f("pk_sweep_schedule")),
        sa.ForeignKeyConstraint(
            ["facility_id"],
            ["ref.facility.facility_id"],
            name=op.f("fk_sweep_schedule_facility_id_facility"),
        ),
        sa.CheckConstraint(
            "window_start_days <= window_end_days", name=op.f("ck_sweep_schedule_window_order")
        ),
        sa.CheckConstraint(
            "window_end_days - window_start_days <= 90", name=op.f("ck_sweep_schedule_window_span")
        ),
        sa.CheckConstraint(
            "active OR next_fire_at IS NULL",
            name=op.f("ck_sweep_schedule_paused_has_no_next_fire"),
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_sweep_schedule_name_id", "sweep_schedule", ["name", "schedule_id"], schema=SCHEMA
    )
    op.create_index(
        "ix_sweep_schedule_due",
        "sweep_schedule",
        ["next_fire_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("active"),
    )

    op.create_table(
        "eligibility_sweep_run",
        _uuid_pk("sweep_run_id"),
        sa.Column("schedule_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("trigger", sa.String(10), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("facility_id", sa.Uuid(), nullable=True),
        sa.Column("service_date_from", sa.Date(), nullable=False),
        sa.Column("service_date_to", sa.Date(), nullable=False),
        sa.Column("payer_ids", postgresql.ARRAY(sa.Uuid()), nullable=False, server_default="{}"),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retry_of", sa.Uuid(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("roster_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _now("created_at"),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("sweep_run_id", name=op.f("pk_eligibility_sweep_run")),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["eligibility.sweep_schedule.schedule_id"],
            name=op.f("fk_eligibility_sweep_run_schedule_id_sweep_schedule"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["facility_id"],
            ["ref.facility.facility_id"],
            name=op.f("fk_eligibility_sweep_run_facility_id_facility"),
        ),
        sa.ForeignKeyConstraint(
            ["retry_of"],
            ["eligibility.eligibility_sweep_run.sweep_run_id"],
            name=op.f("fk_eligibility_sweep_run_retry_of_eligibility_sweep_run"),
            ondelete="SET NULL",
        ),
        sa.CheckConstraint(
            "trigger IN ('SCHEDULED', 'MANUAL', 'RETRY')",
            name=op.f("ck_eligibility_sweep_run_trigger"),
        ),
        sa.CheckConstraint(
            "status IN ('QUEUED', 'RUNNING', 'COMPLETED', 'CANCELLED', 'FAILED')",
            name=op.f("ck_eligibility_sweep_run_status"),
        ),
        sa.CheckConstraint(
            "service_date_from <= service_date_to", name=op.f("ck_eligibility_sweep_run_dates")
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "uq_eligibility_sweep_run_firing",
        "eligibility_sweep_run",
        ["schedule_id", "scheduled_for"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("scheduled_for IS NOT NULL"),
    )
    op.create_index(
        "ix_eligibility_sweep_run_created_at",
        "eligibility_sweep_run",
        ["created_at", "sweep_run_id"],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_eligibility_sweep_run_live",
        "eligibility_sweep_run",
        ["status"],
        schema=SCHEMA,
        postgresql_where=sa.text("status IN ('QUEUED', 'RUNNING')"),
    )

    op.create_table(
        "sweep_run_member",
        sa.Column("sweep_run_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("service_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("coverage_status", sa.String(10), nullable=True),
        sa.Column(
            "anomalies", postgresql.ARRAY(sa.String(40)), nullable=False, server_default="{}"
        ),
        sa.Column("check_ids", postgresql.ARRAY(sa.Uuid()), nullable=False, server_default="{}"),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("sweep_run_id", "member_id", name=op.f("pk_sweep_run_member")),
        sa.ForeignKeyConstraint(
            ["sweep_run_id"],
            ["eligibility.eligibility_sweep_run.sweep_run_id"],
            name=op.f("fk_sweep_run_member_sweep_run_id_eligibility_sweep_run"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.member.member_id"],
            name=op.f("fk_sweep_run_member_member_id_member"),
        ),
        sa.CheckConstraint(
            "status IN ('QUEUED', 'SUBMITTED', 'RECEIVED', 'FAILED', 'SKIPPED')",
            name=op.f("ck_sweep_run_member_status"),
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_sweep_run_member_run_status",
        "sweep_run_member",
        ["sweep_run_id", "status"],
        schema=SCHEMA,
    )

    op.create_table(
        "sweep_firing_skip",
        _uuid_pk("sweep_firing_skip_id"),
        sa.Column("schedule_id", sa.Uuid(), nullable=False),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _now("recorded_at"),
        sa.PrimaryKeyConstraint("sweep_firing_skip_id", name=op.f("pk_sweep_firing_skip")),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["eligibility.sweep_schedule.schedule_id"],
            name=op.f("fk_sweep_firing_skip_schedule_id_sweep_schedule"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "schedule_id",
            "scheduled_for",
            name=op.f("uq_sweep_firing_skip_schedule_id_scheduled_for"),
        ),
        schema=SCHEMA,
    )

    op.add_column(
        "eligibility_check", sa.Column("sweep_run_id", sa.Uuid(), nullable=True), schema=SCHEMA
    )
    op.create_foreign_key(
        op.f("fk_eligibility_check_sweep_run_id_eligibility_sweep_run"),
        "eligibility_check",
        "eligibility_sweep_run",
        ["sweep_run_id"],
        ["sweep_run_id"],
        source_schema=SCHEMA,
        referent_schema=SCHEMA,
        ondelete="SET NULL",
    )
    op.create_index(
        "ix_eligibility_check_sweep_run_id",
        "eligibility_check",
        ["sweep_run_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("sweep_run_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_eligibility_check_sweep_run_id", "eligibility_check", schema=SCHEMA)
    op.drop_constraint(
        op.f("fk_eligibility_check_sweep_run_id_eligibility_sweep_run"),
        "eligibility_check",
        schema=SCHEMA,
        type_="foreignkey",
    )
    op.drop_column("eligibility_check", "sweep_run_id", schema=SCHEMA)
    op.drop_table("sweep_firing_skip", schema=SCHEMA)
    op.drop_table("sweep_run_member", schema=SCHEMA)
    op.drop_table("eligibility_sweep_run", schema=SCHEMA)
    op.drop_table("sweep_schedule", schema=SCHEMA)
