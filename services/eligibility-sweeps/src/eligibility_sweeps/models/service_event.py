"""``service.service_event``: a member's visit at a facility (the sweeps' roster source)."""

from __future__ import annotations

import enum

import sqlalchemy as sa

from eligibility_sweeps.models.base import metadata, one_of, timestamps, uuid_pk
from eligibility_sweeps.models.member import member
from rcm_reference.models import facility


class ServiceEventStatus(enum.StrEnum):
    SCHEDULED = "SCHEDULED"
    CHECKED_IN = "CHECKED_IN"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    NO_SHOW = "NO_SHOW"


service_event = sa.Table(
    "service_event",
    metadata,
    uuid_pk("service_event_id"),
    sa.Column("external_id", sa.String(80), nullable=False, unique=True),
    sa.Column("member_id", sa.Uuid, sa.ForeignKey(member.c.member_id), nullable=False),
    sa.Column("facility_id", sa.Uuid, sa.ForeignKey(facility.c.facility_id), nullable=False),
    sa.Column("service_date", sa.Date, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    *timestamps(),
    sa.CheckConstraint(one_of("status", tuple(ServiceEventStatus)), name="status"),
    schema="service",
)

# A member's visits by date.
sa.Index(
    "ix_service_event_member_id_service_date",
    service_event.c.member_id,
    service_event.c.service_date,
)
# The roster's first leg, index-only: visits in a window by status, with what it groups.
sa.Index(
    "ix_service_event_roster",
    service_event.c.status,
    service_event.c.service_date,
    postgresql_include=["facility_id", "member_id"],
)
