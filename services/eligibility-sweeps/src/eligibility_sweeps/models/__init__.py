"""Every table the sweeps service owns; imported whole by its Alembic tree."""

from eligibility_sweeps.models.audit_event import audit_event
from eligibility_sweeps.models.base import metadata
from eligibility_sweeps.models.coverage_policy import Relationship, coverage_policy
from eligibility_sweeps.models.member import GENDERS, member
from eligibility_sweeps.models.service_event import ServiceEventStatus, service_event

__all__ = [
    "GENDERS",
    "Relationship",
    "ServiceEventStatus",
    "audit_event",
    "coverage_policy",
    "member",
    "metadata",
    "service_event",
]
