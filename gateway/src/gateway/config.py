"""Settings of the gateway process.

The gateway opens no database connection and verifies no token (each service verifies
the token itself); it only needs to know where the services are, how long to wait for
them and which browser origins may call it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from rcm_kit.settings import CommonSettings

MIB = 1024 * 1024


def _upstream_url(value: str) -> str:
    """``http(s)://host[:port]`` with no path, query or fragment; trailing slash dropped."""
    value = value.strip()
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError as error:
        raise ValueError(
            f"must be an http:// URL such as http://127.0.0.1:8001 ({error})"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL such as http://127.0.0.1:8001")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(
            "must name the service's root only (the gateway passes /api/v1/... through unchanged)"
        )
    del port
    return value.rstrip("/")


def _origin(value: str) -> str:
    if value == "*":
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError(f"{value!r} is not an origin such as https://app.example.com")
    return value.rstrip("/")


class GatewaySettings(CommonSettings):
    """Where the services are, timeouts, the body limit and CORS."""

    GATEWAY_HOST: str = Field(default="127.0.0.1", description="Interface the gateway binds.")
    GATEWAY_PORT: int = Field(default=8000, ge=1, le=65535, description="Port of /api/v1.")
    SWEEPS_API_URL: str = Field(
        default="",
        description="Base URL of the eligibility-sweeps API (default: "
        "http://127.0.0.1:$SWEEPS_API_PORT).",
    )
    CONTRACTS_API_URL: str = Field(
        default="",
        description="Base URL of the contract-registry API (default: "
        "http://127.0.0.1:$CONTRACTS_API_PORT).",
    )
    # Read only to default the URLs above: on one machine (make run) the gateway finds
    # the services on the ports they were given, with nothing else to configure.
    SWEEPS_API_PORT: int = Field(default=8001, ge=1, le=65535)
    CONTRACTS_API_PORT: int = Field(default=8002, ge=1, le=65535)
    GATEWAY_TIMEOUT_SECONDS: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Longest wait for an upstream answer on ordinary routes (then 504).",
    )
    GATEWAY_SLOW_TIMEOUT_SECONDS: float = Field(
        default=35.0,
        gt=0,
        le=600,
        description="Longest wait on routes that talk to a trading partner or a mail server "
        "while the caller waits (eligibility checks, inbound X12, partner and alert tests).",
    )
    GATEWAY_CONNECT_TIMEOUT_SECONDS: float = Field(
        default=3.0, gt=0, le=60, description="Longest wait for a TCP connection to a service."
    )
    GATEWAY_MAX_BODY_BYTES: int = Field(
        # The inbound X12 endpoint accepts 5 MB; a little more leaves room for MIME framing,
        # so the service (not the gateway) is the one that says 413 for a file just over.
        default=5 * MIB + 64 * 1024,
        ge=1024,
        description="Largest request body the gateway forwards (bigger: 413).",
    )
    GATEWAY_UPSTREAM_CONNECTIONS: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Pooled keep-alive connections per service.",
    )
    GATEWAY_UPSTREAM_KEEPALIVE_SECONDS: float = Field(
        # Below uvicorn's default keep-alive (5 s), so the gateway drops an idle connection
        # before the service closes it under a request in flight.
        default=4.0,
        gt=0,
        le=300,
        description="How long an idle pooled connection is kept.",
    )
    GATEWAY_HEALTH_TIMEOUT_SECONDS: float = Field(
        default=2.0, gt=0, le=30, description="Timeout of each service's /readyz probe."
    )
    GATEWAY_OPENAPI_CACHE_SECONDS: float = Field(
        default=30.0, ge=0, le=3600, description="How long a service's OpenAPI document is cached."
    )
    CORS_ORIGINS: str = Field(
        default="",
        description="Comma-separated browser origins allowed to call the API (empty: none; "
        "'*': any).",
    )

    @field_validator("SWEEPS_API_URL", "CONTRACTS_API_URL")
    @classmethod
    def _service_url(cls, value: str) -> str:
        return _upstream_url(value) if value.strip() else ""

    @field_validator("CORS_ORIGINS")
    @classmethod
    def _cors_origins(cls, value: str) -> str:
        return ",".join(_origin(item.strip()) for item in value.split(",") if item.strip())

    @model_validator(mode="after")
    def _defaults_and_timeouts(self) -> GatewaySettings:
        if not self.SWEEPS_API_URL:
            self.SWEEPS_API_URL = f"http://127.0.0.1:{self.SWEEPS_API_PORT}"
        if not self.CONTRACTS_API_URL:
            self.CONTRACTS_API_URL = f"http://127.0.0.1:{self.CONTRACTS_API_PORT}"
        if self.GATEWAY_SLOW_TIMEOUT_SECONDS < self.GATEWAY_TIMEOUT_SECONDS:
            raise ValueError(
                "GATEWAY_SLOW_TIMEOUT_SECONDS: must not be shorter than GATEWAY_TIMEOUT_SECONDS"
            )
        return self

    @property
    def cors_origins(self) -> list[str]:
        return [item for item in self.CORS_ORIGINS.split(",") if item]

    @property
    def upstream_urls(self) -> dict[str, str]:
        return {"sweeps": self.SWEEPS_API_URL, "contracts": self.CONTRACTS_API_URL}
