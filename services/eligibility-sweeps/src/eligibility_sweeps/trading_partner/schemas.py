"""What the trading-partner routes take and answer. Passwords and tokens are write-only:
no read model has a field for them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
)

from eligibility_sweeps.models import DEFAULT_TIMEOUT_SECONDS, Transport

# Letters, digits, '.', '-' and inner spaces: no X12 delimiter, no padding ambiguity.
_X12_ID = re.compile(r"[A-Za-z0-9.\-]+( [A-Za-z0-9.\-]+)*")


def _x12_id(value: str) -> str:
    if not _X12_ID.fullmatch(value):
        raise ValueError(
            "must be 1-15 characters of letters, digits, '.', '-' and inner spaces "
            "(an X12 interchange id)"
        )
    return value


def _endpoint_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises on a port that is not a number in range
    except ValueError:
        raise ValueError("must be an http:// or https:// URL") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() for c in value)
    ):
        raise ValueError("must be an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        # They would be stored and shown in clear: credentials belong in `auth`.
        raise ValueError("must not carry credentials; put them in auth")
    return value


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
EndpointUrl = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2000), AfterValidator(_endpoint_url)
]
X12Id = Annotated[str, StringConstraints(min_length=1, max_length=15), AfterValidator(_x12_id)]
UsageIndicator = Literal["T", "P"]
Timeout = Annotated[int, Field(ge=1, le=60)]
Rate = Annotated[float, Field(gt=0, le=100_000)]
DailyCap = Annotated[int, Field(gt=0, le=100_000_000)]


class AuthNone(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["none"]


class AuthBasic(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["basic"]
    username: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    password: Annotated[SecretStr, Field(min_length=1, max_length=1000)] = Field(
        description="Write-only: stored encrypted, never returned."
    )


class AuthBearer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["bearer"]
    token: Annotated[SecretStr, Field(min_length=1, max_length=8000)] = Field(
        description="Write-only: stored encrypted, never returned."
    )


AuthIn = Annotated[AuthNone | AuthBasic | AuthBearer, Field(discriminator="type")]


class AuthNoneRead(BaseModel):
    type: Literal["none"] = "none"


class AuthBasicRead(BaseModel):
    type: Literal["basic"] = "basic"
    username: str


class AuthBearerRead(BaseModel):
    type: Literal["bearer"] = "bearer"


AuthRead = AuthNoneRead | AuthBasicRead | AuthBearerRead


class PayerLimit(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    payer_id: UUID = Field(description="One of the partner's payer_ids.")
    max_requests_per_second: Rate | None = Field(
        default=None, description="The payer's published rate limit; null = none."
    )
    daily_request_cap: DailyCap | None = Field(
        default=None, description="270s per UTC day to this payer; null = none."
    )


def _distinct_payers(values: list[UUID]) -> list[UUID]:
    return list(dict.fromkeys(values))


PayerIds = Annotated[
    list[UUID],
    Field(max_length=1000),
    AfterValidator(_distinct_payers),
]


def _limits_distinct(limits: list[PayerLimit]) -> list[PayerLimit]:
    seen: set[UUID] = set()
    for limit in limits:
        if limit.payer_id in seen:
            raise ValueError(f"lists payer {limit.payer_id} twice")
        seen.add(limit.payer_id)
    return limits


PayerLimits = Annotated[list[PayerLimit], Field(max_length=1000), AfterValidator(_limits_distinct)]


class TradingPartnerRead(BaseModel):
    trading_partner_id: UUID
    name: str
    transport: Transport
    endpoint_url: str
    auth: AuthRead = Field(description="Without the password or token, which are write-only.")
    sender_id: str = Field(description="ISA06, our interchange sender id.")
    receiver_id: str = Field(description="ISA08, the partner's interchange receiver id.")
    usage_indicator: UsageIndicator = Field(description="ISA15: T test, P production.")
    payer_ids: list[UUID] = Field(description="The payers whose 270s go through this partner.")
    timeout_seconds: int
    max_requests_per_second: float | None = Field(description="The partner's own limit.")
    payer_limits: list[PayerLimit] = Field(description="The payers with a published limit.")
    active: bool
    has_inbound_credential: bool
    inbound_credential_created_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TradingPartnerCreated(TradingPartnerRead):
    inbound_credential: str = Field(
        description="The partner's credential for the inbound endpoint (HTTP Basic password "
        "or bearer token). Shown this once: only its hash is stored."
    )


class InboundCredential(BaseModel):
    trading_partner_id: UUID
    inbound_credential: str = Field(description="Shown this once; the previous one is revoked.")
    inbound_credential_created_at: datetime


class TradingPartnerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="1-120 characters, unique in your organization.")
    transport: Transport = Field(description="`core-mime` (CAQH CORE) or `x12-http`.")
    endpoint_url: EndpointUrl = Field(description="http(s) URL of the partner's endpoint.")
    auth: AuthIn = Field(default_factory=lambda: AuthNone(type="none"))
    sender_id: X12Id
    receiver_id: X12Id
    usage_indicator: UsageIndicator = Field(default="P", description="T test, P production.")
    payer_ids: PayerIds = Field(default_factory=list)
    timeout_seconds: Timeout = DEFAULT_TIMEOUT_SECONDS
    max_requests_per_second: Rate | None = None
    payer_limits: PayerLimits = Field(default_factory=list)
    active: bool = True


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may not be null")
    return value


class TradingPartnerUpdate(BaseModel):
    """Only the fields sent change; `auth`, `payer_ids` and `payer_limits` are replaced whole."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    transport: Transport | None = None
    endpoint_url: EndpointUrl | None = None
    auth: AuthIn | None = Field(default=None, description="Replaced whole when sent.")
    sender_id: X12Id | None = None
    receiver_id: X12Id | None = None
    usage_indicator: UsageIndicator | None = None
    payer_ids: PayerIds | None = Field(
        default=None, description="Replaced whole; limits of payers kept are kept."
    )
    timeout_seconds: Timeout | None = None
    max_requests_per_second: Rate | None = Field(default=None, description="Null: no limit.")
    payer_limits: PayerLimits | None = Field(
        default=None, description="Replaced whole; payers not listed lose their limits."
    )
    active: bool | None = None

    _present = field_validator(
        "name",
        "transport",
        "endpoint_url",
        "auth",
        "sender_id",
        "receiver_id",
        "usage_indicator",
        "payer_ids",
        "timeout_seconds",
        "payer_limits",
        "active",
    )(_not_null)


class ConnectivityTest(BaseModel):
    trading_partner_id: UUID
    ok: bool = Field(description="Whether the partner took the probe 270 and answered.")
    outcome: str = Field(description="What happened, in words, with the partner's own.")
    elapsed_ms: float | None = Field(description="The round trip, when there was one.")
    response_kind: str | None = Field(description="271, 999 or TA1 when one came back.")
    tested_at: datetime
