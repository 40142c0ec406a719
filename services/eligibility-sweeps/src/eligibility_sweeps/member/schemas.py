"""What the member routes answer."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from eligibility_sweeps.models import Relationship


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
