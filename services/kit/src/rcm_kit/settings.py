"""Typed settings read from the environment, validated before a process starts.

Every process kind has one ``Settings`` subclass. ``load_settings`` turns a bad value
into a one-paragraph message naming the variable and exits, so nothing ever runs
misconfigured.
"""

from __future__ import annotations

import sys
from typing import Literal, TypeVar

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogFormat = Literal["json", "console"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def normalise_database_url(value: str) -> str:
    """Accept ``postgres://`` and ``postgresql://`` DSNs and use the asyncpg driver."""
    for prefix in (
        "postgres://",
        "postgresql://",
        "postgresql+psycopg://",
        "postgresql+psycopg2://",
    ):
        if value.startswith(prefix):
            return "postgresql+asyncpg://" + value[len(prefix) :]
    if not value.startswith("postgresql+asyncpg://"):
        raise ValueError("must be a PostgreSQL URL (postgresql://user@host:port/database)")
    return value


class CommonSettings(BaseSettings):
    """Settings every process shares: data stores, logging and token verification."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=True, extra="ignore")

    DATABASE_URL: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/rcm",
        description="Master database URL; tenant databases live on the same server unless "
        "a tenant names its own connection target.",
    )
    REDIS_URL: str = Field(default="redis://127.0.0.1:6379/0", description="Redis URL.")
    LOG_LEVEL: LogLevel = "INFO"
    LOG_FORMAT: LogFormat = "json"
    JWT_SECRET: str | None = Field(
        default=None, description="HS256 shared secret (development and partner tokens)."
    )
    JWT_JWKS_URL: str | None = Field(default=None, description="JWKS URL for RS256/ES256 tokens.")
    JWT_ISSUER: str | None = None
    JWT_AUDIENCE: str | None = None
    TENANT_POOL_SIZE: int = Field(default=5, ge=1, le=100)
    MAX_TENANT_ENGINES: int = Field(default=50, ge=1, le=10_000)
    TENANT_CACHE_SECONDS: float = Field(default=5.0, ge=0, le=10)

    @field_validator("DATABASE_URL")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator("JWT_SECRET", "JWT_JWKS_URL", "JWT_ISSUER", "JWT_AUDIENCE", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # A ConfigMap or env file often carries KEY= for "not set": an empty issuer would
        # otherwise demand iss == "" and refuse every token.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("REDIS_URL")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("LOG_LEVEL", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class ApiSettings(CommonSettings):
    """Settings of an HTTP service that verifies tokens itself."""

    MAX_BODY_BYTES: int = Field(default=5 * 1024 * 1024, ge=1024)

    @model_validator(mode="after")
    def _token_verification(self) -> ApiSettings:
        if not self.JWT_SECRET and not self.JWT_JWKS_URL:
            raise ValueError(
                "JWT_SECRET or JWT_JWKS_URL: set at least one, or no request can be authenticated"
            )
        if self.JWT_SECRET is not None and len(self.JWT_SECRET) < 32:
            raise ValueError("JWT_SECRET: must be at least 32 characters")
        return self


S = TypeVar("S", bound=BaseSettings)


def format_validation_error(process: str, error: ValidationError) -> str:
    lines = [f"{process}: refusing to start, the environment is misconfigured:"]
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "settings"
        message = item["msg"].removeprefix("Value error, ")
        value = item.get("input")
        shown = (
            ""
            if isinstance(value, dict) or "SECRET" in name or "PASSWORD" in name
            else (f" (got {value!r})")
        )
        lines.append(f"  {name}: {message}{shown}")
    return "\n".join(lines)


def load_settings(cls: type[S], process: str) -> S:
    """Build ``cls`` from the environment, or print why not and exit with status 2."""
    try:
        return cls()
    except ValidationError as error:
        print(format_validation_error(process, error), file=sys.stderr)
        raise SystemExit(2) from None
