from __future__ import annotations

from pydantic import Field

from rcm_kit.settings import ApiSettings


class Settings(ApiSettings):
    CONTRACTS_API_HOST: str = "127.0.0.1"
    CONTRACTS_API_PORT: int = Field(default=8002, ge=1, le=65535)
