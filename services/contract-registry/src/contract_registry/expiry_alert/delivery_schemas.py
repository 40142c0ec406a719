"""What the delivery routes of the expiry alerts answer: "Send test", the history and
the dispatcher's status."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contract_registry.models import DeliveryKind, DeliveryStatus


class SendTestRead(BaseModel):
    status: DeliveryStatus = Field(description="SUCCESS or FAILED: what the mail relay said.")
    matched_contracts: int = Field(
        description="Contracts the mail listed (0: the mail said none matched)."
    )
    error: str | None = Field(
        description="Why the send failed, starting with Temporary (worth retrying later) or "
        "Permanent (fix the SMTP settings or the recipients), then the relay's own words; "
        "or the recipients the relay refused while accepting the others."
    )


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    delivery_id: UUID
    attempted_at: datetime
    completed_at: datetime | None
    kind: DeliveryKind = Field(description="SCHEDULED (the dispatcher) or TEST (Send test).")
    status: DeliveryStatus = Field(
        description="SENDING (in flight), SUCCESS, FAILED or NO_CONTRACTS (nothing matched; "
        "recorded once a day at most)."
    )
    matched_contracts: int
    recipients: list[str]
    error: str | None
    retry_at: datetime | None = Field(
        description="A FAILED scheduled attempt: when the dispatcher tries again. Null on a "
        "FAILED one: not automatically that day (outcome unknown)."
    )


class DispatcherStatusRead(BaseModel):
    enabled: bool = Field(description="False: CONTRACT_EXPIRY_ALERTS_ENABLED=false, no mail.")
    interval_ms: int = Field(description="CONTRACT_EXPIRY_INTERVAL_MS.")
    last_tick_at: datetime | None = Field(
        description="When a dispatcher last ticked; null when none has recently (not "
        "running, or disabled)."
    )
