"""What ``/sandbox/*`` reads and returns."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator

from clearinghouse_sandbox.config import (
    MAX_WAIT_SECONDS,
    Delivery,
    Latency,
    SandboxConfig,
    check_inbound_url,
    parse_latency,
)
from clearinghouse_sandbox.records import DeliveryRecord, RequestRecord


def _microseconds(instant: datetime) -> str:
    """RFC 3339 with six fractional digits always, so clients can diff arrival times."""
    return instant.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


Instant = Annotated[datetime, PlainSerializer(_microseconds, return_type=str)]


class ConfigRead(BaseModel):
    """The runtime config. Secrets are write-only: only whether each is set shows."""

    latency_ms: Latency = Field(description="Milliseconds, or `[min, max]` for a random one.")
    error_rate: float = Field(description="Fraction of requests answered HTTP 503.")
    delivery: Delivery
    delay_seconds: float = Field(description="Wait before a delayed answer is posted.")
    inbound_url: str | None
    hang_seconds: float = Field(description="How long `SBX-HANG` waits before answering.")
    username: str | None
    password_set: bool
    token_set: bool
    inbound_credential_set: bool

    @classmethod
    def of(cls, config: SandboxConfig) -> ConfigRead:
        return cls(
            latency_ms=config.latency_ms,
            error_rate=config.error_rate,
            delivery=config.delivery,
            delay_seconds=config.delay_seconds,
            inbound_url=config.inbound_url,
            hang_seconds=config.hang_seconds,
            username=config.username,
            password_set=config.password is not None,
            token_set=config.token is not None,
            inbound_credential_set=config.inbound_credential is not None,
        )


class ConfigUpdate(BaseModel):
    """A partial update: only the fields present change; ``null`` clears an optional one."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: Latency | str | None = None
    error_rate: float | None = Field(default=None, ge=0, le=1)
    delivery: Delivery | None = None
    delay_seconds: float | None = Field(default=None, ge=0, le=MAX_WAIT_SECONDS)
    inbound_url: str | None = None
    inbound_credential: str | None = None
    hang_seconds: float | None = Field(default=None, ge=0, le=MAX_WAIT_SECONDS)
    username: str | None = None
    password: str | None = None
    token: str | None = None

    @field_validator("latency_ms", mode="before")
    @classmethod
    def _latency(cls, value: object) -> Latency | None:
        return None if value is None else parse_latency(value)

    @field_validator("inbound_url")
    @classmethod
    def _inbound_url(cls, value: str | None) -> str | None:
        return check_inbound_url(value)

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class RequestRead(BaseModel):
    received_at: Instant
    transport: str = Field(description="`x12-http` or `core-mime`.")
    payload_id: str = Field(description="CORE PayloadID; empty over x12-http.")
    sender_id: str
    receiver_id: str
    subscriber_id: str
    dependent: bool
    trace_number: str
    interchange_control_number: str
    group_control_number: str
    transaction_control_number: str
    service_date: date | None
    service_types: list[str]
    rule: str = Field(description="The rule id, `UNREADABLE` or `CORE-ENVELOPE`.")
    answer: str = Field(description="`271`, `999`, `TA1`, `accepted`, `HTTP 503`, a CORE code...")
    x12: str

    @classmethod
    def of(cls, record: RequestRecord) -> RequestRead:
        return cls(
            received_at=record.received_at,
            transport=record.transport,
            payload_id=record.payload_id,
            sender_id=record.sender_id,
            receiver_id=record.receiver_id,
            subscriber_id=record.subscriber_id,
            dependent=record.dependent,
            trace_number=record.trace_number,
            interchange_control_number=record.interchange_control_number,
            group_control_number=record.group_control_number,
            transaction_control_number=record.transaction_control_number,
            service_date=record.service_date,
            service_types=list(record.service_types),
            rule=record.rule,
            answer=record.answer,
            x12=record.x12,
        )


class RequestList(BaseModel):
    items: list[RequestRead]
    count: int = Field(description="Items in this answer.")


class DeliveryRead(BaseModel):
    attempted_at: Instant
    trace_number: str
    transport: str
    answer: str
    url: str | None
    attempt: int
    status_code: int | None = Field(description="None when no HTTP answer came back.")
    delivered: bool
    response_excerpt: str
    error: str | None

    @classmethod
    def of(cls, record: DeliveryRecord) -> DeliveryRead:
        return cls(
            attempted_at=record.attempted_at,
            trace_number=record.trace_number,
            transport=record.transport,
            answer=record.answer,
            url=record.url,
            attempt=record.attempt,
            status_code=record.status_code,
            delivered=record.delivered,
            response_excerpt=record.response_excerpt,
            error=record.error,
        )


class DeliveryList(BaseModel):
    items: list[DeliveryRead]
    count: int
