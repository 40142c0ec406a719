from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PayerRead(_Read):
    payer_id: UUID
    payer_code: str
    name: str
    active: bool


class BillingEntityRead(_Read):
    billing_entity_id: UUID
    billing_entity_code: str
    name: str
    npi: str | None


class FacilityRead(_Read):
    facility_id: UUID
    facility_code: str
    name: str
    npi: str | None
