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

# The roster query: visits in a date window by status, then a member's visits.
sa.Index(
    "ix_service_event_member_id_service_date",
    service_event.c.member_id,
    service_event.c.service_date,
)
sa.Index(
    "ix_service_event_status_service_date", service_event.c.status, service_event.c.service_date
)
