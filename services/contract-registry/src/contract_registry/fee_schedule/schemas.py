"""What the fee schedule routes answer."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class FeeScheduleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    fee_schedule_id: UUID
    contract_id: UUID | None = Field(description="The contract it is linked to.")
    name: str
    effective_from: date
    effective_to: date | None = Field(description="Null = open-ended.")
    line_count: int = Field(description="Procedure code lines priced by the schedule.")
