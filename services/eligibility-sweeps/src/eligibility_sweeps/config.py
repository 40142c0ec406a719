from __future__ import annotations

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rcm_kit.settings import ApiSettings


class PartnerSettings(BaseSettings):
    """What every process that sends 270s needs (sweeps-api and sweeps-worker): the key
    that opens trading partners' credentials and the partner limits' timing."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=True, extra="ignore")

    # Optional so that a deployment without outbound credentials runs unchanged; the
    # trading-partner routes refuse to store a password or token while it is unset.
    SECRETS_KEY: SecretStr | None = Field(
        default=None,
        description="Fernet key(s) encrypting trading partners' passwords and tokens at "
        "rest: URL-safe base64 of 32 bytes; several comma-separated for rotation (the "
        "first encrypts, every one decrypts).",
    )
    PARTNER_BREAKER_COOLDOWN_SECONDS: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How long a trading partner's open circuit breaker refuses checks "
        "before one half-open probe may try the partner again.",
    )
    PARTNER_RATE_WAIT_SECONDS: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="The longest a check waits for a rate-limit token of its partner and "
        "payer before it fails (retryable) instead of queueing further.",
    )

    @field_validator("SECRETS_KEY")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        for key in value.get_secret_value().split(","):
            try:
                Fernet(key.strip())
            except (ValueError, TypeError):
                raise ValueError(
                    "must be Fernet keys (URL-safe base64 of 32 bytes), comma-separated; "
                    'make one with python -c "from cryptography.fernet import Fernet; '
                    'print(Fernet.generate_key().decode())"'
                ) from None
        return value


class Settings(ApiSettings, PartnerSettings):
    SWEEPS_API_HOST: str = "127.0.0.1"
    SWEEPS_API_PORT: int = Field(default=8001, ge=1, le=65535)
