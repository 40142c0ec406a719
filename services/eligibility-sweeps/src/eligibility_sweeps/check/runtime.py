"""The checks pipeline of one process, built once at start and closed at exit."""

from __future__ import annotations

import httpx

from eligibility_sweeps.check.pipeline import CheckPipeline
from eligibility_sweeps.config import Settings
from eligibility_sweeps.trading_partner.credentials import SecretBox
from rcm_kit.service import Runtime

# Connections to partners stay open between checks (keep-alive); this bounds them.
MAX_CONNECTIONS = 100


def build_pipeline(settings: Settings, runtime: Runtime) -> CheckPipeline:
    http = httpx.AsyncClient(
        limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=20),
        follow_redirects=False,
    )
    runtime.closers.append(http.aclose)
    box = SecretBox(settings.SECRETS_KEY) if settings.SECRETS_KEY is not None else None
    return CheckPipeline(
        redis=runtime.redis,
        http=http,
        box=box,
        clock=runtime.clock,
        breaker_cooldown_seconds=settings.PARTNER_BREAKER_COOLDOWN_SECONDS,
        max_wait_seconds=settings.PARTNER_RATE_WAIT_SECONDS,
    )
