"""Settings of the contract registry's two processes: the API and the expiry-alert dispatcher."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rcm_kit.mail import SmtpSettings
from rcm_kit.settings import ApiSettings, CommonSettings

INTERVAL_MIN_MS = 15_000
INTERVAL_MAX_MS = 1_800_000


class ExpiryAlertSettings(BaseSettings):
    """The dispatcher's switch and pace, which the API reports when no dispatcher has."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=True, extra="ignore")

    CONTRACT_EXPIRY_ALERTS_ENABLED: bool = Field(
        default=True,
        description="false suspends the dispatcher loop (break-glass); alert CRUD keeps working.",
    )
    CONTRACT_EXPIRY_INTERVAL_MS: int = Field(
        default=60_000, description="Time between two dispatcher ticks, 15000-1800000 ms."
    )

    @field_validator("CONTRACT_EXPIRY_INTERVAL_MS")
    @classmethod
    def _interval(cls, value: int) -> int:
        if not INTERVAL_MIN_MS <= value <= INTERVAL_MAX_MS:
            raise ValueError(
                f"must be between {INTERVAL_MIN_MS} and {INTERVAL_MAX_MS} milliseconds "
                "(15 s to 30 min)"
            )
        return value


class Settings(ApiSettings, ExpiryAlertSettings, SmtpSettings):
    """``contracts-api``. SMTP too: an alert's "Send test" mails from the API process."""

    CONTRACTS_API_HOST: str = "127.0.0.1"
    CONTRACTS_API_PORT: int = Field(default=8002, ge=1, le=65535)


class DispatcherSettings(CommonSettings, ExpiryAlertSettings, SmtpSettings):
    """``contracts-dispatcher``."""

    DISPATCHER_HOST: str = Field(default="127.0.0.1", description="Address of /healthz, /metrics.")
    DISPATCHER_HEALTH_PORT: int = Field(
        default=9103, ge=1, le=65535, description="Port of /healthz and /metrics."
    )
    CONTRACT_EXPIRY_TENANT_CONCURRENCY: int = Field(
        default=10, ge=1, le=200, description="Tenants processed at once in a tick."
    )
    CONTRACT_EXPIRY_SEND_CONCURRENCY: int = Field(
        default=20, ge=1, le=500, description="Mails in flight at once (SMTP connections)."
    )
    CONTRACT_EXPIRY_RETRY_BASE_SECONDS: int = Field(
        default=60,
        ge=1,
        le=86_400,
        description="Wait after a day's first failed send; doubled after each further failure.",
    )
    CONTRACT_EXPIRY_RETRY_MAX_SECONDS: int = Field(
        default=3600, ge=1, le=86_400, description="Longest wait between two retries."
    )
    CONTRACT_EXPIRY_CLAIM_TIMEOUT_SECONDS: int = Field(
        default=600,
        ge=60,
        le=86_400,
        description="A scheduled send still SENDING after this long belongs to a dispatcher "
        "that stopped: it becomes FAILED 'outcome unknown' and is not retried that day.",
    )
    CONTRACT_EXPIRY_SHUTDOWN_GRACE_SECONDS: float = Field(
        default=30.0,
        ge=0,
        le=600,
        description="On SIGTERM, how long the tick in flight may take to finish its sends.",
    )

    @model_validator(mode="after")
    def _claim_outlives_a_send(self) -> DispatcherSettings:
        # A claim must never be declared abandoned while its send can still be running.
        if self.CONTRACT_EXPIRY_CLAIM_TIMEOUT_SECONDS < 4 * self.SMTP_TIMEOUT_SECONDS:
            raise ValueError(
                "CONTRACT_EXPIRY_CLAIM_TIMEOUT_SECONDS: must be at least 4 x SMTP_TIMEOUT_SECONDS"
            )
        if self.CONTRACT_EXPIRY_RETRY_MAX_SECONDS < self.CONTRACT_EXPIRY_RETRY_BASE_SECONDS:
            raise ValueError(
                "CONTRACT_EXPIRY_RETRY_MAX_SECONDS: must not be below "
                "CONTRACT_EXPIRY_RETRY_BASE_SECONDS"
            )
        return self
