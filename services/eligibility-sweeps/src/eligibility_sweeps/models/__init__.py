"""Every table the sweeps service owns; imported whole by its Alembic tree."""

from eligibility_sweeps.models.audit_event import audit_event
from eligibility_sweeps.models.base import metadata
from eligibility_sweeps.models.control_number_sequence import (
    MAX_CONTROL_NUMBER,
    ControlNumberKind,
    control_number_sequence,
)
from eligibility_sweeps.models.coverage_policy import Relationship, coverage_policy
from eligibility_sweeps.models.eligibility_check import (
    CheckStatus,
    CoverageStatusValue,
    ResponseKind,
    eligibility_check,
)
from eligibility_sweeps.models.idempotency_key import idempotency_key
from eligibility_sweeps.models.inbound_file import InboundOutcome, inbound_file
from eligibility_sweeps.models.member import GENDERS, member
from eligibility_sweeps.models.service_event import ServiceEventStatus, service_event
from eligibility_sweeps.models.trading_partner import (
    DEFAULT_TIMEOUT_SECONDS,
    USAGE_INDICATORS,
    AuthType,
    Transport,
    trading_partner,
    trading_partner_payer,
)

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "GENDERS",
    "MAX_CONTROL_NUMBER",
    "USAGE_INDICATORS",
    "AuthType",
    "CheckStatus",
    "ControlNumberKind",
    "CoverageStatusValue",
    "InboundOutcome",
    "Relationship",
    "ResponseKind",
    "ServiceEventStatus",
    "Transport",
    "audit_event",
    "control_number_sequence",
    "coverage_policy",
    "eligibility_check",
    "idempotency_key",
    "inbound_file",
    "member",
    "metadata",
    "service_event",
    "trading_partner",
    "trading_partner_payer",
]
