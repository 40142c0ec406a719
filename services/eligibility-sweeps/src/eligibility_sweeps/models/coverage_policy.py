"""``member.coverage_policy``: a member's insurance with one payer (primary, secondary...)."""

from __future__ import annotations

import enum

import sqlalchemy as sa

from eligibility_sweeps.models.base import metadata, one_of, timestamps, uuid_pk
from eligibility_sweeps.models.member import member
from rcm_reference.models import payer


class Relationship(enum.StrEnum):
    """The member's relationship to the policy's subscriber (X12 INS02, simplified)."""

    SELF = "self"
    SPOUSE = "spouse"
    CHILD = "child"
    OTHER = "other"


coverage_policy = sa.Table(
    "coverage_policy",
    metadata,
    uuid_pk("coverage_policy_id"),
    sa.Column("member_id", sa.Uuid, sa.ForeignKey(member.c.member_id), nullable=False),
    sa.Column("payer_id", sa.Uuid, sa.ForeignKey(payer.c.payer_id), nullable=False),
    sa.Column("subscriber_id", sa.String(80), nullable=False),
    sa.Column("effective_from", sa.Date, nullable=False),
    sa.Column("effective_to", sa.Date, nullable=True),
    # 1 primary, 2 secondary, ...
    sa.Column("priority", sa.SmallInteger, nullable=False, server_default=sa.text("1")),
    sa.Column(
        "relationship",
        sa.String(10),
        nullable=False,
        server_default=sa.text(f"'{Relationship.SELF.value}'"),
    ),
    # The subscriber's own name and birth date, required when the member is a dependent.
    sa.Column("subscriber_first_name", sa.String(100), nullable=True),
    sa.Column("subscriber_last_name", sa.String(100), nullable=True),
    sa.Column("subscriber_date_of_birth", sa.Date, nullable=True),
    *timestamps(),
    sa.UniqueConstraint("member_id", "payer_id", "subscriber_id"),
    sa.CheckConstraint("effective_to >= effective_from", name="effective_dates"),
    sa.CheckConstraint("priority >= 1", name="priority"),
    sa.CheckConstraint(one_of("relationship", tuple(Relationship)), name="relationship"),
    sa.CheckConstraint(
        "relationship = 'self' OR (subscriber_first_name IS NOT NULL"
        " AND subscriber_last_name IS NOT NULL AND subscriber_date_of_birth IS NOT NULL)",
        name="dependent_subscriber",
    ),
    schema="member",
)

sa.Index(
    "ix_coverage_policy_member_id_effective_from",
    coverage_policy.c.member_id,
    coverage_policy.c.effective_from,
)
