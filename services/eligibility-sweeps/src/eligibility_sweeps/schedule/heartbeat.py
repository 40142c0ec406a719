"""The supervisor's heartbeat in Redis, which the API's scheduler-status route reads.

Every supervisor writes it on each tick (and keeps writing while
``SWEEP_SCHEDULER_ENABLED=false``, so ``enabled: false`` shows) with
``write_heartbeat``; it expires after ``ttl_seconds``, so when no supervisor runs the
keys vanish and ``read_heartbeat`` answers None. Several supervisors overwrite each
other's beat, which is fine: they hold the same schedules.

Two keys, named after the master database so that deployments sharing a Redis never
read each other's supervisor (as the contracts dispatcher does):

- ``rcm:<master db>:sweeps:scheduler``: JSON
  ``{"enabled": true, "last_tick_at": "2026-11-22T02:00:00Z"}``;
- ``rcm:<master db>:sweeps:scheduler:armed``: a hash ``{tenant_id: count}`` of the
  schedules armed per tenant (tenants with none are left out). Per tenant, so that a
  tenant never learns how many schedules another one has, and so that a read is one
  ``HGET`` however many tenants there are.

Both are written in one MULTI/EXEC, so a reader never sees the status of one beat with
the counts of another.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from redis.asyncio import Redis

from eligibility_sweeps.redis_names import namespace
from rcm_kit.clock import rfc3339

__all__ = [
    "DEFAULT_TTL_SECONDS",
    "Heartbeat",
    "armed_key",
    "read_heartbeat",
    "status_key",
    "write_heartbeat",
]

# A beat outlives this long without a new one; write at least every third of it.
DEFAULT_TTL_SECONDS = 30


@dataclass(frozen=True)
class Heartbeat:
    enabled: bool
    last_tick_at: datetime
    armed_schedules: int  # the reading tenant's


def status_key(database_url: str) -> str:
    return f"{namespace(database_url)}:scheduler"


def armed_key(database_url: str) -> str:
    return f"{status_key(database_url)}:armed"


async def write_heartbeat(
    redis: Redis,
    *,
    database_url: str,
    enabled: bool,
    armed_schedules: Mapping[UUID, int],
    at: datetime,
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
) -> None:
    """Record that a supervisor ticked ``at``; ``armed_schedules`` counts, per tenant,
    the active schedules it holds and will fire (pass an empty mapping while disabled).
    The supervisor calls this; ``database_url`` is the master database's URL."""
    status = json.dumps({"enabled": enabled, "last_tick_at": rfc3339(at)})
    counts = {str(tenant): int(n) for tenant, n in armed_schedules.items() if n > 0}
    ttl_ms = int(ttl_seconds * 1000)
    key, armed = status_key(database_url), armed_key(database_url)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(key, status, px=ttl_ms)
        pipe.delete(armed)
        if counts:
            pipe.hset(armed, mapping=counts)
            pipe.pexpire(armed, ttl_ms)
        await pipe.execute()


async def read_heartbeat(redis: Redis, *, database_url: str, tenant_id: UUID) -> Heartbeat | None:
    """The last beat with ``tenant_id``'s armed count, or None when no supervisor has
    written one within its time-to-live."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.get(status_key(database_url))
        pipe.hget(armed_key(database_url), str(tenant_id))
        raw, armed = await pipe.execute()
    if raw is None:
        return None
    value = json.loads(raw)
    return Heartbeat(
        enabled=bool(value["enabled"]),
        last_tick_at=datetime.fromisoformat(str(value["last_tick_at"]).replace("Z", "+00:00")),
        armed_schedules=int(armed) if armed is not None else 0,
    )
