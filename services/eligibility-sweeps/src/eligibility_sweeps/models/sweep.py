"""Sweeps: ``eligibility.sweep_schedule`` (what to sweep, when), ``eligibility_sweep_run``
(one sweep), ``sweep_run_member`` (one member of a run's roster, and how its 270s went)
and ``sweep_firing_skip`` (a cron firing that made no run, and why).

A run's counts are never stored: they are counted from its member rows, so they can
never disagree with them (API.md: ``total`` is the sum of the five statuses).
"""

from __future__ import annotations

import enum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from eligibility_sweeps.models.base import metadata, one_of, timestamps, uuid_pk
from eligibility_sweeps.models.member import member
from rcm_reference.models import facility

MAX_WINDOW_DAYS = 90


class RunTrigger(enum.StrEnum):
    SCHEDULED = "SCHEDULED"
    MANUAL = "MANUAL"
    RETRY = "RETRY"


class RunStatus(enum.StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


FINAL_RUN_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.CANCELLED, RunStatus.FAILED})


class MemberStatus(enum.StrEnum):
    QUEUED = "QUEUED"
    SUBMITTED = "SUBMITTED"
    RECEIVED = "RECEIVED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


sweep_schedule = sa.Table(
    "sweep_schedule",
    metadata,
    uuid_pk("schedule_id"),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("cron", sa.String(120), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False, server_default=sa.text("'UTC'")),
    sa.Column("facility_id", sa.Uuid, sa.ForeignKey(facility.c.facility_id), nullable=True),
    sa.Column("window_start_days", sa.Integer, nullable=False),
    sa.Column("window_end_days", sa.Integer, nullable=False),
    sa.Column("payer_ids", ARRAY(sa.Uuid), nullable=False, server_default="{}"),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    # The next firing (null while paused). The supervisor fires by compare-and-set on
    # this column, so a firing happens once however many supervisors see it due.
    sa.Column("next_fire_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_fired_at", sa.DateTime(timezone=True), nullable=True),
    *timestamps(),
    sa.CheckConstraint("window_start_days <= window_end_days", name="window_order"),
    sa.CheckConstraint(
        f"window_end_days - window_start_days <= {MAX_WINDOW_DAYS}", name="window_span"
    ),
    sa.CheckConstraint("active OR next_fire_at IS NULL", name="paused_has_no_next_fire"),
    schema="eligibility",
)

sa.Index("ix_sweep_schedule_name_id", sweep_schedule.c.name, sweep_schedule.c.schedule_id)
sa.Index(
    "ix_sweep_schedule_due",
    sweep_schedule.c.next_fire_at,
    postgresql_where=sweep_schedule.c.active,
)

eligibility_sweep_run = sa.Table(
    "eligibility_sweep_run",
    metadata,
    uuid_pk("sweep_run_id"),
    sa.Column(
        "schedule_id",
        sa.Uuid,
        sa.ForeignKey(sweep_schedule.c.schedule_id, ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("trigger", sa.String(10), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("facility_id", sa.Uuid, sa.ForeignKey(facility.c.facility_id), nullable=True),
    sa.Column("service_date_from", sa.Date, nullable=False),
    sa.Column("service_date_to", sa.Date, nullable=False),
    sa.Column("payer_ids", ARRAY(sa.Uuid), nullable=False, server_default="{}"),
    # The fire time of a SCHEDULED run; a firing makes at most one run.
    sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True),
    # A RETRY run's source: its roster is that run's FAILED members.
    sa.Column(
        "retry_of",
        sa.Uuid,
        sa.ForeignKey("eligibility.eligibility_sweep_run.sweep_run_id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    # Set once every member row exists: a run cannot be COMPLETED before that.
    sa.Column("roster_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    *timestamps(),
    sa.CheckConstraint(one_of("trigger", tuple(RunTrigger)), name="trigger"),
    sa.CheckConstraint(one_of("status", tuple(RunStatus)), name="status"),
    sa.CheckConstraint("service_date_from <= service_date_to", name="dates"),
    schema="eligibility",
)

sa.Index(
    "uq_eligibility_sweep_run_firing",
    eligibility_sweep_run.c.schedule_id,
    eligibility_sweep_run.c.scheduled_for,
    unique=True,
    postgresql_where=eligibility_sweep_run.c.scheduled_for.is_not(None),
)
sa.Index(
    "ix_eligibility_sweep_run_created_at",
    eligibility_sweep_run.c.created_at,
    eligibility_sweep_run.c.sweep_run_id,
)
sa.Index(
    "ix_eligibility_sweep_run_live",
    eligibility_sweep_run.c.status,
    postgresql_where=eligibility_sweep_run.c.status.in_(
        [RunStatus.QUEUED.value, RunStatus.RUNNING.value]
    ),
)

sweep_run_member = sa.Table(
    "sweep_run_member",
    metadata,
    sa.Column(
        "sweep_run_id",
        sa.Uuid,
        sa.ForeignKey(eligibility_sweep_run.c.sweep_run_id, ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("member_id", sa.Uuid, sa.ForeignKey(member.c.member_id), primary_key=True),
    sa.Column("service_date", sa.Date, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("failure_reason", sa.Text, nullable=True),
    sa.Column("coverage_status", sa.String(10), nullable=True),
    sa.Column("anomalies", ARRAY(sa.String(40)), nullable=False, server_default="{}"),
    sa.Column("check_ids", ARRAY(sa.Uuid), nullable=False, server_default="{}"),
    # When a worker claimed it (QUEUED -> SUBMITTED) before its 270s left.
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.CheckConstraint(one_of("status", tuple(MemberStatus)), name="status"),
    schema="eligibility",
)

sa.Index(
    "ix_sweep_run_member_run_status", sweep_run_member.c.sweep_run_id, sweep_run_member.c.status
)

sweep_firing_skip = sa.Table(
    "sweep_firing_skip",
    metadata,
    uuid_pk("sweep_firing_skip_id"),
    sa.Column(
        "schedule_id",
        sa.Uuid,
        sa.ForeignKey(sweep_schedule.c.schedule_id, ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column(
        "recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.UniqueConstraint("schedule_id", "scheduled_for"),
    schema="eligibility",
)
