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
from eligibility_sweeps.models.sweep import (
    FINAL_RUN_STATUSES,
    MAX_WINDOW_DAYS,
    MemberStatus,
    RunStatus,
    RunTrigger,
    eligibility_sweep_run,
    sweep_firing_skip,
    sweep_run_member,
    sweep_schedule,
)
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
    "FINAL_RUN_STATUSES",
    "GENDERS",
    "MAX_CONTROL_NUMBER",
    "MAX_WINDOW_DAYS",
    "USAGE_INDICATORS",
    "AuthType",
    "CheckStatus",
    "ControlNumberKind",
    "CoverageStatusValue",
    "InboundOutcome",
    "MemberStatus",
    "Relationship",
    "ResponseKind",
    "RunStatus",
    "RunTrigger",
    "ServiceEventStatus",
    "Transport",
    "audit_event",
    "control_number_sequence",
    "coverage_policy",
    "eligibility_check",
    "eligibility_sweep_run",
    "idempotency_key",
    "inbound_file",
    "member",
    "metadata",
    "service_event",
    "sweep_firing_skip",
    "sweep_run_member",
    "sweep_schedule",
    "trading_partner",
    "trading_partner_payer",
]
