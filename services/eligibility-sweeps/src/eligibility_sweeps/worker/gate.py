"""Sweep slots: ``INGEST_QUEUE_CONCURRENCY`` sweeps send at once across every tenant and
worker process, a tenant sends one sweep at a time, and waiting sweeps get slots in the
order they asked for them.

One Lua script decides, so two workers can never both take the last slot. Keys (under
``rcm:<master db>:sweeps:gate``, shared by every worker of the deployment):

- ``:leases`` ZSET ``<tenant>:<run>`` → lease expiry (Redis time, ms). A holder renews
  its lease while it sends (the run's ``sweep.run`` tick and each send job); a lease not
  renewed for ``SWEEP_SLOT_LEASE_SECONDS`` (every worker of the sweep died) lapses and
  the slot is free again.
- ``:tenants`` HASH ``<tenant>`` → the holder of the tenant's slot.
- ``:waiting`` ZSET ``<tenant>:<run>`` → when it first asked (ms), and ``:seen`` → when
  it last asked: a waiter that stops asking (its job died) is forgotten after
  ``stale_seconds``, so it never blocks the queue for long.

Fairness: a free slot goes to the oldest waiter whose tenant is not sending already
(counting each tenant once), so a tenant's sweeps queue behind each other in order while
other tenants' sweeps pass them, and between tenants it is first come, first served.

A sweep holds its slot while it has members to send (QUEUED). A run whose 270s have all
left but which still awaits late 271s gives its slot back: waiting costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from redis.asyncio import Redis

# KEYS: leases, tenants, waiting, seen. ARGV: holder, tenant, limit, lease ms, stale ms.
# Returns 1 when the holder holds the slot now (taken or renewed), else 0.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local holder, tenant = ARGV[1], ARGV[2]
local limit, lease, stale = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local function tenant_of(h) return string.match(h, '^([^:]+):') end
for _, h in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('ZREM', KEYS[1], h)
  local tn = tenant_of(h)
  if redis.call('HGET', KEYS[2], tn) == h then redis.call('HDEL', KEYS[2], tn) end
end
for _, h in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - stale)) do
  redis.call('ZREM', KEYS[4], h)
  redis.call('ZREM', KEYS[3], h)
end
if redis.call('ZSCORE', KEYS[1], holder) then
  redis.call('ZADD', KEYS[1], now + lease, holder)
  return 1
end
redis.call('ZADD', KEYS[3], 'NX', now, holder)
redis.call('ZADD', KEYS[4], now, holder)
local owner = redis.call('HGET', KEYS[2], tenant)
if owner and owner ~= holder then return 0 end
local free = limit - redis.call('ZCARD', KEYS[1])
if free <= 0 then return 0 end
local ahead, counted = 0, {}
for _, h in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  if h == holder then break end
  local tn = tenant_of(h)
  if tn == tenant then return 0 end
  if not counted[tn] and not redis.call('HGET', KEYS[2], tn) then
    counted[tn] = true
    ahead = ahead + 1
  end
end
if ahead >= free then return 0 end
redis.call('ZADD', KEYS[1], now + lease, holder)
redis.call('HSET', KEYS[2], tenant, holder)
redis.call('ZREM', KEYS[3], holder)
redis.call('ZREM', KEYS[4], holder)
return 1
"""

# KEYS: leases, tenants, waiting, seen. ARGV: holder, tenant.
_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[2], ARGV[2]) end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1
"""


@dataclass
class SweepGate:
    """The slots of ``INGEST_QUEUE_CONCURRENCY`` (see the module text)."""

    redis: Redis
    limit: int
    lease_seconds: float
    stale_seconds: float
    """A waiter that has not asked again for this long is forgotten."""
    prefix: str
    """Where its keys live: ``redis_names.gate_prefix``."""

    def __post_init__(self) -> None:
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._release = self.redis.register_script(_RELEASE)

    @property
    def _keys(self) -> list[str]:
        return [f"{self.prefix}:{name}" for name in ("leases", "tenants", "waiting", "seen")]

    @staticmethod
    def holder(tenant_id: UUID, sweep_run_id: UUID) -> str:
        return f"{tenant_id}:{sweep_run_id}"

    async def acquire(self, tenant_id: UUID, sweep_run_id: UUID) -> bool:
        """Take or renew the run's slot; False while it must wait (it is queued for one)."""
        granted = await self._acquire(
            keys=self._keys,
            args=[
                self.holder(tenant_id, sweep_run_id),
                str(tenant_id),
                self.limit,
                int(self.lease_seconds * 1000),
                int(self.stale_seconds * 1000),
            ],
        )
        return int(granted) == 1

    async def release(self, tenant_id: UUID, sweep_run_id: UUID) -> None:
        await self._release(
            keys=self._keys, args=[self.holder(tenant_id, sweep_run_id), str(tenant_id)]
        )

    async def holders(self) -> int:
        """Sweeps holding a slot now (lapsed leases included until the next acquire)."""
        return int(await self.redis.zcard(self._keys[0]))
