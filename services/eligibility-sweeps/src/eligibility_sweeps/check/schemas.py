"""What the check routes take and answer."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from eligibility_sweeps.models import CheckStatus, CoverageStatusValue


class CheckCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_id: UUID
    service_date: date = Field(description="The date of service the 270 asks about.")
    coverage_policy_id: UUID | None = Field(
        default=None, description="Check this policy of the member."
    )
    payer_id: UUID | None = Field(
        default=None,
        description="Without a policy: the member's policy with this payer active on the "
        "service date. Without either: the member's primary active policy that day.",
    )


class DatePeriodRead(BaseModel):
    qualifier: str = Field(description="DTP01, e.g. 291 plan, 346 plan begin, 347 plan end.")
    start: date | None
    end: date | None


class BenefitRead(BaseModel):
    """One EB line of the 271."""

    loop: str = Field(description="2110C (subscriber) or 2110D (dependent).")
    info_code: str = Field(description="EB01, e.g. 1 active, 6 inactive, B co-payment.")
    info: str = Field(description="EB01 in words.")
    coverage_level: str = Field(description="EB02, e.g. IND, FAM.")
    service_types: list[str] = Field(description="EB03 service type codes, e.g. 30.")
    insurance_type: str = Field(description="EB04, e.g. PR (PPO), HM (HMO), MB (Medicare B).")
    plan_description: str = Field(description="EB05.")
    time_period: str = Field(description="EB06, e.g. 23 calendar year, 29 remaining.")
    amount: Decimal | None = Field(description="EB07.")
    percent: Decimal | None = Field(description="EB08, 0.2 = 20 %.")
    quantity_qualifier: str
    quantity: Decimal | None
    authorization_required: str = Field(description="EB11: Y, N or U.")
    in_network: str = Field(description="EB12: Y in network, N out, W not applicable.")
    dates: list[DatePeriodRead] = Field(default_factory=list)
    messages: list[str] = Field(default_factory=list, description="MSG free text.")


class PlanRead(BaseModel):
    name: str | None = Field(description="The active plan's description (EB05).")
    begin: date | None
    end: date | None
    insurance_type: str | None = None
    plan_number: str | None = Field(default=None, description="REF*18.")
    group_number: str | None = Field(default=None, description="REF*6P.")
    payer_name: str | None = Field(default=None, description="2100A NM103 as the payer sent it.")


class RejectRead(BaseModel):
    """An AAA segment: the payer could not or would not answer at some level."""

    loop: str = Field(description="Where it sat: 2100A payer, 2100B provider, 2100C/D patient.")
    reason_code: str = Field(description="AAA03, e.g. 75 subscriber not found, 42 try later.")
    reason: str
    follow_up_code: str = Field(description="AAA04, e.g. C correct and resubmit, R resubmit.")
    follow_up: str


class OtherPayerRead(BaseModel):
    """An EB*R line: another payer the member has (2120C/D)."""

    name: str
    entity_code: str = Field(description="PRP primary, SEP secondary, TTP tertiary.")
    id_qualifier: str
    id: str
    policy_number: str = Field(description="REF*IG.")


class CheckRead(BaseModel):
    check_id: UUID
    member_id: UUID
    coverage_policy_id: UUID
    payer_id: UUID
    payer_code: str
    trading_partner_id: UUID | None = Field(
        description="Null when no active trading partner routes the payer."
    )
    service_date: date
    status: CheckStatus = Field(
        description="SUBMITTED: the 270 left and the 271 is awaited; RECEIVED: a 271 "
        "was read (whatever it says); FAILED: see `error`."
    )
    retryable: bool = Field(description="Whether sending the same 270 later may succeed.")
    coverage_status: CoverageStatusValue | None = Field(
        description="ACTIVE, INACTIVE, NOT_FOUND or UNKNOWN on the date of service; null "
        "until a 271 is RECEIVED."
    )
    anomalies: list[str] = Field(description="Codes for the exception queue.")
    benefits: list[BenefitRead]
    plan: PlanRead | None
    rejects: list[RejectRead]
    other_payers: list[OtherPayerRead]
    error: str | None = Field(description="Why the check FAILED, the upstream words verbatim.")
    submitted_at: datetime | None = Field(description="When the 270 left; null if it never did.")
    received_at: datetime | None
    elapsed_ms: float | None = Field(description="The partner's real-time round trip.")
    trace_number: str = Field(description="TRN02 of the 270, echoed by the 271.")
    control_number: int | None = Field(description="ISA13 = GS06 = ST02 of the 270.")
    created_at: datetime


class CheckWithX12(CheckRead):
    request_x12: str | None = Field(description="The 270 as sent.")
    response_x12: str | None = Field(description="The 271, 999 or TA1 as received.")
    response_kind: Literal["271", "999", "TA1"] | None


def check_read(row: Any, *, include_x12: bool = False) -> CheckRead:
    data = dict(row._mapping)
    model = CheckWithX12 if include_x12 else CheckRead
    return model.model_validate(data)


class InboundResult(BaseModel):
    inbound_file_id: UUID
    kind: str = Field(description="271, 999 or TA1.")
    outcome: Literal["MATCHED", "UNMATCHED", "UNREADABLE"]
    detail: str
    check_ids: list[UUID]
    duplicate: bool = Field(description="True when this exact file had already arrived.")


class InboundFileRead(BaseModel):
    """A late 271, 999 or TA1 as it arrived, and what became of it."""

    inbound_file_id: UUID
    trading_partner_id: UUID | None = Field(
        description="The partner of the credential route; null for the JWT route."
    )
    received_at: datetime
    content_type: str
    kind: str = Field(description="271, 999, TA1, 270 or unknown.")
    outcome: Literal["MATCHED", "UNMATCHED", "UNREADABLE"]
    detail: str = Field(description="What matched, or why nothing did.")
    check_ids: list[UUID]


class InboundFileWithBody(InboundFileRead):
    body: str = Field(description="The X12 as received.")
