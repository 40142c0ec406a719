"""``eligibility.eligibility_check``: one 270 for one member's coverage, and what came back.

History is kept: a new check never overwrites an older one, so the anomalies that
compare against "the previous RECEIVED check for the same member and payer" always have
it. ``identity`` is that comparison's snapshot of what the payer returned.
"""

from __future__ import annotations

import enum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from eligibility_sweeps.models.base import metadata, one_of, timestamps, uuid_pk
from eligibility_sweeps.models.coverage_policy import coverage_policy
from eligibility_sweeps.models.member import member
from eligibility_sweeps.models.trading_partner import trading_partner
from rcm_reference.models import payer


class CheckStatus(enum.StrEnum):
    SUBMITTED = "SUBMITTED"
    RECEIVED = "RECEIVED"
    FAILED = "FAILED"


class CoverageStatusValue(enum.StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    NOT_FOUND = "NOT_FOUND"
    UNKNOWN = "UNKNOWN"


class ResponseKind(enum.StrEnum):
    X271 = "271"
    X999 = "999"
    TA1 = "TA1"


eligibility_check = sa.Table(
    "eligibility_check",
    metadata,
    uuid_pk("check_id"),
    sa.Column("member_id", sa.Uuid, sa.ForeignKey(member.c.member_id), nullable=False),
    sa.Column(
        "coverage_policy_id",
        sa.Uuid,
        sa.ForeignKey(coverage_policy.c.coverage_policy_id),
        nullable=False,
    ),
    sa.Column("payer_id", sa.Uuid, sa.ForeignKey(payer.c.payer_id), nullable=False),
    # Null when no active partner routes the payer (the check FAILED without a 270).
    sa.Column(
        "trading_partner_id",
        sa.Uuid,
        sa.ForeignKey(trading_partner.c.trading_partner_id),
        nullable=True,
    ),
    sa.Column("service_date", sa.Date, nullable=False),
    # The sweep run that sent it; null for a check from the API.
    sa.Column(
        "sweep_run_id",
        sa.Uuid,
        sa.ForeignKey("eligibility.eligibility_sweep_run.sweep_run_id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("retryable", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("coverage_status", sa.String(10), nullable=True),
    sa.Column("anomalies", ARRAY(sa.String(40)), nullable=False, server_default="{}"),
    sa.Column("benefits", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("plan", JSONB, nullable=True),
    sa.Column("rejects", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("other_payers", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    # Who the 270 asked about (subscriber id, the patient's name and birth date), for
    # DEMOGRAPHIC_MISMATCH when the 271 arrives later; and the payer's answer about
    # the same (``x12.anomalies.PreviousCheck``) for the next check's change anomalies.
    sa.Column("inquiry", JSONB, nullable=True),
    sa.Column("identity", JSONB, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    # TRN02 of the 270, echoed by the 271: how a late 271 finds its check.
    sa.Column("trace_number", sa.String(50), nullable=False, unique=True),
    # ISA13 = GS06 = ST02 (one counter per partner): how a 999 or TA1 finds it.
    sa.Column("control_number", sa.Integer, nullable=True),
    sa.Column("request_x12", sa.Text, nullable=True),
    sa.Column("response_x12", sa.Text, nullable=True),
    sa.Column("response_kind", sa.String(3), nullable=True),
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
    # The partner's round trip for the real-time answer, in milliseconds.
    sa.Column("elapsed_ms", sa.Double, nullable=True),
    *timestamps(),
    sa.CheckConstraint(one_of("status", tuple(CheckStatus)), name="status"),
    sa.CheckConstraint(
        f"coverage_status IS NULL OR {one_of('coverage_status', tuple(CoverageStatusValue))}",
        name="coverage_status",
    ),
    sa.CheckConstraint(
        f"response_kind IS NULL OR {one_of('response_kind', tuple(ResponseKind))}",
        name="response_kind",
    ),
    schema="eligibility",
)

# A member's history, newest first.
sa.Index(
    "ix_eligibility_check_member_id_created_at",
    eligibility_check.c.member_id,
    eligibility_check.c.created_at,
    eligibility_check.c.check_id,
)
# The previous RECEIVED check of a member with a payer (the change anomalies).
sa.Index(
    "ix_eligibility_check_received_member_payer",
    eligibility_check.c.member_id,
    eligibility_check.c.payer_id,
    eligibility_check.c.received_at,
    postgresql_where=eligibility_check.c.status == CheckStatus.RECEIVED.value,
)
# A 999 or TA1 names our control number; a partner's numbers are unique until they wrap.
sa.Index(
    "ix_eligibility_check_partner_control_number",
    eligibility_check.c.trading_partner_id,
    eligibility_check.c.control_number,
)

sa.Index(
    "ix_eligibility_check_sweep_run_id",
    eligibility_check.c.sweep_run_id,
    postgresql_where=eligibility_check.c.sweep_run_id.is_not(None),
)
