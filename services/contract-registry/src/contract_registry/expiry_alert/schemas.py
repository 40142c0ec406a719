"""What the expiry-alert routes take and answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from contract_registry.contract.schemas import Window
from contract_registry.models import AlertStatus

MAX_RECIPIENTS = 10


def default_subject(lead_days: int) -> str:
    return f"Contracts expiring within {lead_days} days"


def _address(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ValueError(f"is not a valid e-mail address: {error}") from None


def _distinct(values: list[str]) -> list[str]:
    seen: set[str] = set()
    distinct = []
    for value in values:
        if value.casefold() not in seen:
            seen.add(value.casefold())
            distinct.append(value)
    if not 1 <= len(distinct) <= MAX_RECIPIENTS:
        raise ValueError(
            f"must list 1 to {MAX_RECIPIENTS} distinct e-mail addresses, not {len(distinct)}"
        )
    return distinct


def _one_line(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("must be a single line")
    return value


Address = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=254), AfterValidator(_address)
]
Recipients = Annotated[
    list[Address],
    AfterValidator(_distinct),
    Field(
        description="1 to 10 e-mail addresses. Each is trimmed and its domain lower-cased; "
        "a repeat of an earlier address (compared without regard to case) is dropped, and "
        "the limit counts distinct addresses. A bad address is named by its index "
        "(`recipients.3`).",
        json_schema_extra={"minItems": 1, "maxItems": MAX_RECIPIENTS},
    ),
]
Subject = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_one_line),
]


class AlertRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    alert_id: UUID
    payer_id: UUID | None = Field(description="Null = all payers.")
    payer_name: str | None = Field(description="Null = all payers.")
    billing_entity_id: UUID | None = Field(description="Null = all billing entities.")
    billing_entity_name: str | None = Field(description="Null = all billing entities.")
    lead_days: int = Field(description="30, 60 or 90.")
    recipients: list[str]
    subject: str
    active: bool = Field(description="False: paused; the dispatcher skips it.")
    last_fired_at: datetime | None = Field(
        description="When the scheduled mail last went out (a test send never sets it)."
    )
    last_status: AlertStatus | None = Field(
        description="The most recent attempt: SUCCESS (Sent), FAILED (see last_error) or "
        "NO_CONTRACTS (No matches); null before the first."
    )
    last_error: str | None
    created_at: datetime
    updated_at: datetime


def _not_null(value: Any) -> Any:
    # Field validators run only on values the client sent: an explicit null lands here.
    if value is None:
        raise ValueError("may not be null")
    return value


class AlertCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payer_id: UUID | None = Field(default=None, description="Null or omitted = all payers.")
    billing_entity_id: UUID | None = Field(
        default=None, description="Null or omitted = all billing entities."
    )
    lead_days: Window = Field(description="Mail contracts expiring within 30, 60 or 90 days.")
    recipients: Recipients
    subject: Subject | None = Field(
        default=None,
        description="1-200 characters, one line. Omitted or null: "
        "`Contracts expiring within <lead_days> days`.",
    )
    active: bool = True


class AlertUpdate(BaseModel):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    payer_id: UUID | None = Field(default=None, description="Null widens to all payers.")
    billing_entity_id: UUID | None = Field(
        default=None, description="Null widens to all billing entities."
    )
    lead_days: Window | None = Field(
        default=None,
        description="Changing it without sending `subject` keeps a custom subject and "
        "re-defaults a default one (`...within 30 days` becomes `...within 60 days`).",
    )
    recipients: Recipients | None = None
    subject: Subject | None = Field(default=None, description="Null: back to the default.")
    active: bool | None = Field(default=None, description="False pauses the alert.")

    _present = field_validator("lead_days", "recipients", "active")(_not_null)
