"""What the contract routes take and answer."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from contract_registry.models import LEAD_DAYS, ContractStatus


def _one_of_windows(value: int) -> int:
    if value not in LEAD_DAYS:
        raise ValueError(f"must be one of {', '.join(map(str, LEAD_DAYS))}")
    return value


# 30, 60 or 90: the expiring-soon windows of the list, the banner and the alerts.
Window = Annotated[
    int, AfterValidator(_one_of_windows), Field(json_schema_extra={"enum": list(LEAD_DAYS)})
]
ContractName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]
ContractNumber = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)
]


class ContractRead(BaseModel):
    """One contract joined with its payer and billing entity, as the list and drawer show it."""

    model_config = ConfigDict(from_attributes=True)

    contract_id: UUID
    payer_id: UUID
    payer_name: str
    billing_entity_id: UUID
    billing_entity_name: str
    name: str
    contract_number: str = Field(description="Unique per payer.")
    status: ContractStatus = Field(
        description="How the contract reads today: an ACTIVE contract whose effective_to has "
        "passed (in your organization's time zone) reads as EXPIRED."
    )
    stored_status: ContractStatus = Field(
        description="The status as saved. Differs from `status` only for an ACTIVE contract "
        "past its end; prefill the edit dialog with it."
    )
    effective_from: date
    effective_to: date | None = Field(description="Last day in force; null = open-ended.")
    days_until_expiry: int | None = Field(
        description="effective_to minus today (negative once past); null when open-ended."
    )
    fee_schedule_count: int = Field(description="Fee schedules linked to this contract.")
    version: int = Field(description="Send it back in `If-Match` when editing.")
    updated_at: datetime


class ExpiringCounts(BaseModel):
    active: int = Field(description="Contracts that read ACTIVE today.")
    expiring: dict[Literal["30", "60", "90"], int] = Field(
        description="ACTIVE contracts whose effective_to is today or within 30, 60, 90 days: "
        "exactly the rows of the list with `expiring_within_days=N` and the same filters."
    )


def _not_null(value: Any, info: ValidationInfo) -> Any:
    # Field validators run only on values the client sent: an explicit null lands here.
    if value is None:
        raise ValueError("may not be null")
    return value


class ContractCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    billing_entity_id: UUID
    name: ContractName
    contract_number: ContractNumber
    status: ContractStatus = Field(
        default=ContractStatus.ACTIVE,
        description="Default ACTIVE: a contract keyed in while onboarding a payer is in force.",
    )
    effective_from: date
    effective_to: date | None = Field(default=None, description="Null or omitted = open-ended.")

    @field_validator("effective_to")
    @classmethod
    def _not_before_start(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("effective_from")
        if value is not None and start is not None and value < start:
            raise ValueError(f"must be on or after effective_from ({start.isoformat()})")
        return value


class ContractUpdate(BaseModel):
    """Only the fields sent change. `effective_to: null` makes the contract open-ended."""

    model_config = ConfigDict(extra="forbid")

    billing_entity_id: UUID | None = None
    name: ContractName | None = None
    contract_number: ContractNumber | None = None
    status: ContractStatus | None = Field(
        default=None,
        description="Sending back the status the contract reads as (EXPIRED for an ACTIVE "
        "contract past its end) leaves the stored status alone, so a round trip of the edit "
        "form that moves effective_to into the future makes the contract ACTIVE again.",
    )
    effective_from: date | None = None
    effective_to: date | None = None

    _present = field_validator(
        "billing_entity_id", "name", "contract_number", "status", "effective_from"
    )(_not_null)
