"""The dispatcher's heartbeat in Redis, which the API's status route reads.

Each dispatcher writes one key every tick (and every interval while disabled, so
``enabled: false`` shows) with a time-to-live of a few intervals: when no dispatcher
runs, the key vanishes and the API answers from its own settings with
``last_tick_at: null``. The key is named after the master database, so two deployments
sharing a Redis never read each other's dispatcher.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from rcm_kit.clock import rfc3339

# A key outlives this many intervals without a heartbeat.
TTL_INTERVALS = 3


@dataclass(frozen=True)
class DispatcherStatus:
    enabled: bool
    interval_ms: int
    last_tick_at: datetime | None


def status_key(database_url: str) -> str:
    return f"rcm:{make_url(database_url).database or 'rcm'}:contracts:dispatcher"


async def publish(redis: Redis, key: str, status: DispatcherStatus) -> None:
    value = {
        "enabled": status.enabled,
        "interval_ms": status.interval_ms,
        "last_tick_at": rfc3339(status.last_tick_at) if status.last_tick_at else None,
    }
    ttl_ms = status.interval_ms * TTL_INTERVALS + 60_000
    await redis.set(key, json.dumps(value), px=ttl_ms)


async def read(redis: Redis, key: str) -> DispatcherStatus | None:
    raw = await redis.get(key)
    if raw is None:
        return None
    value = json.loads(raw)
    last = value.get("last_tick_at")
    return DispatcherStatus(
        enabled=bool(value["enabled"]),
        interval_ms=int(value["interval_ms"]),
        last_tick_at=datetime.fromisoformat(last.replace("Z", "+00:00")) if last else None,
    )
