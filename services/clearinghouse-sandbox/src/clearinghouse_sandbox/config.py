"""The sandbox's settings (environment, read once at start) and its runtime config.

Most knobs are runtime config: tests and benchmarks change latency, error rate or the
delivery mode between two requests through ``PUT /sandbox/config`` without restarting
the process. The environment only gives their starting values, plus what cannot
change while running (address, port, record limit, logging).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from rcm_kit.settings import LogFormat, LogLevel

Delivery = Literal["inline", "delayed"]
Latency = int | tuple[int, int]
"""Milliseconds: a fixed delay, or ``(min, max)`` for a uniformly random one."""

MAX_LATENCY_MS = 600_000
MAX_WAIT_SECONDS = 3600.0
_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")


def parse_latency(value: object) -> Latency:
    """``0``, ``"120"``, ``"50-200"``, ``[50, 200]`` → ``0``, ``120``, ``(50, 200)``."""
    if isinstance(value, str):
        match = _RANGE.match(value)
        if match:
            value = (int(match.group(1)), int(match.group(2)))
        elif value.strip().isdigit():
            value = int(value)
        else:
            raise ValueError("must be milliseconds (120) or a range (50-200)")
    if isinstance(value, bool):
        raise ValueError("must be milliseconds or a [min, max] range")
    if isinstance(value, int):
        _check_ms(value)
        return value
    if isinstance(value, list | tuple) and len(value) == 2:
        low, high = (_check_ms(v) for v in value)
        if low > high:
            raise ValueError("a range's minimum must not exceed its maximum")
        return (low, high)
    raise ValueError("must be milliseconds or a [min, max] range")


def _check_ms(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("milliseconds must be whole numbers")
    if not 0 <= value <= MAX_LATENCY_MS:
        raise ValueError(f"milliseconds must be between 0 and {MAX_LATENCY_MS}")
    return value


def check_inbound_url(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    return value


class SandboxConfig(BaseModel):
    """What the sandbox does now; replaced whole on every change, never mutated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    latency_ms: Latency = 0
    error_rate: float = Field(default=0.0, ge=0, le=1)
    delivery: Delivery = "inline"
    delay_seconds: float = Field(default=2.0, ge=0, le=MAX_WAIT_SECONDS)
    inbound_url: str | None = None
    inbound_credential: str | None = None
    hang_seconds: float = Field(default=120.0, ge=0, le=MAX_WAIT_SECONDS)
    username: str | None = None
    password: str | None = None
    token: str | None = None

    @field_validator("latency_ms", mode="before")
    @classmethod
    def _latency(cls, value: object) -> Latency:
        return parse_latency(value)

    @field_validator("inbound_url")
    @classmethod
    def _inbound_url(cls, value: str | None) -> str | None:
        return check_inbound_url(value)

    @property
    def requires_credentials(self) -> bool:
        return any((self.username, self.password, self.token))

    def updated(self, changes: dict[str, Any]) -> SandboxConfig:
        """A new config with ``changes`` applied and everything validated again."""
        return SandboxConfig.model_validate({**self.model_dump(), **changes})


class Settings(BaseSettings):
    """``clearinghouse-sandbox``: the environment, validated before the process starts."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=True, extra="ignore")

    SANDBOX_HOST: str = Field(default="127.0.0.1", description="Interface to bind.")
    SANDBOX_PORT: int = Field(default=8090, ge=1, le=65535, description="Port to bind.")
    SANDBOX_LATENCY_MS: Annotated[Latency, NoDecode] = Field(
        default=0, description="Added before each answer: `0`, `120` or a range `50-200`."
    )
    SANDBOX_ERROR_RATE: float = Field(
        default=0.0, ge=0, le=1, description="Fraction of requests answered HTTP 503."
    )
    SANDBOX_DELIVERY: Delivery = Field(
        default="inline", description="`inline` (271 in the response) or `delayed`."
    )
    SANDBOX_DELAY_SECONDS: float = Field(
        default=2.0, ge=0, le=MAX_WAIT_SECONDS, description="Wait before a delayed delivery."
    )
    SANDBOX_INBOUND_URL: str | None = Field(
        default=None, description="Where delayed answers are posted."
    )
    SANDBOX_INBOUND_CREDENTIAL: str | None = Field(
        default=None, description="Bearer credential sent with delayed answers."
    )
    SANDBOX_INBOUND_CREDENTIAL_FILE: Path | None = Field(
        default=None,
        description="A file holding that credential, read at each delayed delivery while "
        "none is configured (so it may be written after the sandbox starts, e.g. by a "
        "one-shot container once the tenant exists).",
    )
    SANDBOX_HANG_SECONDS: float = Field(
        default=120.0, ge=0, le=MAX_WAIT_SECONDS, description="How long `SBX-HANG` waits."
    )
    SANDBOX_USERNAME: str | None = Field(default=None, description="Required user, if set.")
    SANDBOX_PASSWORD: str | None = Field(default=None, description="Required password, if set.")
    SANDBOX_TOKEN: str | None = Field(default=None, description="Accepted bearer token, if set.")
    SANDBOX_RECORD_LIMIT: int = Field(
        default=100_000,
        ge=1,
        le=10_000_000,
        description="Requests (and delivery attempts) kept for /sandbox/*; oldest dropped.",
    )
    LOG_LEVEL: LogLevel = "INFO"
    LOG_FORMAT: LogFormat = "json"

    @field_validator("SANDBOX_LATENCY_MS", mode="before")
    @classmethod
    def _latency(cls, value: object) -> Latency:
        return parse_latency(value)

    @field_validator("SANDBOX_INBOUND_URL")
    @classmethod
    def _inbound_url(cls, value: str | None) -> str | None:
        return check_inbound_url(value)

    @field_validator("LOG_LEVEL", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    def initial_config(self) -> SandboxConfig:
        return SandboxConfig(
            latency_ms=self.SANDBOX_LATENCY_MS,
            error_rate=self.SANDBOX_ERROR_RATE,
            delivery=self.SANDBOX_DELIVERY,
            delay_seconds=self.SANDBOX_DELAY_SECONDS,
            inbound_url=self.SANDBOX_INBOUND_URL,
            inbound_credential=self.SANDBOX_INBOUND_CREDENTIAL,
            hang_seconds=self.SANDBOX_HANG_SECONDS,
            username=self.SANDBOX_USERNAME,
            password=self.SANDBOX_PASSWORD,
            token=self.SANDBOX_TOKEN,
        )
