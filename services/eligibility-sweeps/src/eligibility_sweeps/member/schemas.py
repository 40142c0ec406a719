"""What the member routes take and answer."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Annotated
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

from eligibility_sweeps.models import Relationship
from eligibility_sweeps.x12.charset import NM103_MAX_LENGTH, NM104_MAX_LENGTH, x12_name

# What member ids on cards are made of, and safe in NM109: none of these is one of the
# delimiters our 270s use, and the builder sends an id exactly as stored.
_SUBSCRIBER_ID = re.compile(r"[A-Za-z0-9 ./-]+")


def _subscriber_id(value: str) -> str:
    if not _SUBSCRIBER_ID.fullmatch(value):
        raise ValueError(
            "may hold only letters A-Z, digits, spaces and the characters - . / "
            "(it is sent as the member id of an X12 270)"
        )
    return value


def _writable_name(max_len: int) -> Callable[[str], str]:
    """Refuse a name the 270 builder would refuse; store it as typed (the builder
    upper-cases and transliterates when it sends it)."""

    def check(value: str) -> str:
        x12_name(value, max_len=max_len)
        return value

    return check


SubscriberId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=2, max_length=80),
    AfterValidator(_subscriber_id),
]
_Name = StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
LastName = Annotated[str, _Name, AfterValidator(_writable_name(NM103_MAX_LENGTH))]
FirstName = Annotated[str, _Name, AfterValidator(_writable_name(NM104_MAX_LENGTH))]
Priority = Annotated[int, Field(ge=1, le=9)]


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class MemberRead(_Read):
    member_id: UUID
    external_id: str = Field(description="The member's id in the host platform (the MRN).")
    first_name: str
    last_name: str
    date_of_birth: date


class CoveragePolicyRead(_Read):
    coverage_policy_id: UUID
    payer_id: UUID
    payer_code: str = Field(description="The payer's X12 payer id.")
    payer_name: str
    subscriber_id: str = Field(description="The id on the insurance card.")
    effective_from: date
    effective_to: date | None = Field(description="Last day of coverage; null = open-ended.")
    priority: int = Field(description="1 primary, 2 secondary, and so on.")
    relationship: Relationship = Field(
        description="The member's relationship to the subscriber (self when the member holds "
        "the policy)."
    )
    subscriber_first_name: str | None
    subscriber_last_name: str | None
    subscriber_date_of_birth: date | None


class MemberDetail(MemberRead):
    gender: str | None = Field(description="F, M or U (X12 DMG03); null when unknown.")
    coverage_policies: list[CoveragePolicyRead] = Field(
        description="Every policy, current or not: by priority, then newest first."
    )


class CoveragePolicyCreate(BaseModel):
    """A policy keyed in by the intake desk from the member's insurance card."""

    model_config = ConfigDict(extra="forbid")

    payer_id: UUID = Field(description="One of your organization's payers (`GET /api/v1/payers`).")
    subscriber_id: SubscriberId = Field(
        description="The id on the insurance card: letters, digits, spaces and - . / only; "
        "surrounding spaces are dropped."
    )
    effective_from: date
    effective_to: date | None = Field(
        default=None, description="Last day of coverage; null or omitted = open-ended."
    )
    priority: Priority = Field(default=1, description="1 primary, 2 secondary, ... up to 9.")
    relationship: Relationship = Field(
        default=Relationship.SELF,
        description="The member's relationship to the subscriber: `self` when the member holds "
        "the policy, else the member is a dependent on someone else's policy.",
    )
    subscriber_first_name: FirstName | None = Field(
        default=None,
        description="The policy holder's first name: required for a dependent, refused for self.",
        validate_default=True,
    )
    subscriber_last_name: LastName | None = Field(
        default=None,
        description="The policy holder's last name: required for a dependent, refused for self.",
        validate_default=True,
    )
    subscriber_date_of_birth: date | None = Field(
        default=None,
        description="The policy holder's date of birth, not in the future: required for a "
        "dependent, refused for self.",
        validate_default=True,
    )

    @field_validator("effective_to")
    @classmethod
    def _not_before_start(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("effective_from")
        if value is not None and start is not None and value < start:
            raise ValueError(f"must be on or after effective_from ({start.isoformat()})")
        return value

    @field_validator("subscriber_first_name", "subscriber_last_name", "subscriber_date_of_birth")
    @classmethod
    def _only_for_a_dependent(cls, value: object, info: ValidationInfo) -> object:
        relationship = info.data.get("relationship")
        if relationship is None:  # itself invalid, and named as such
            return value
        if relationship is Relationship.SELF and value is not None:
            raise ValueError(
                "only for a dependent's policy: leave it out when relationship is self "
                "(the member's own name and date of birth are used)"
            )
        if relationship is not Relationship.SELF and value is None:
            raise ValueError(f"required when relationship is {relationship.value}")
        return value
