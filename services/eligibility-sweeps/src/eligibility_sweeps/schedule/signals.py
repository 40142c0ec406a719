"""The change signal that lets supervisors hot-load a schedule within seconds.

After every committed change to a schedule the API publishes one message on a Redis
pub/sub channel; each supervisor subscribes once (one connection per process, not one
per tenant) and reloads that schedule from the tenant's database. The database stays
the truth: the message says only which schedule to look at, so a supervisor treats
``change`` as a hint and reads the row (gone = deleted; ``active`` false = paused).

Pub/sub delivers at most once and only to those listening at that moment, so a
supervisor that was restarting misses messages: its periodic resync is the backstop.

Channel: ``rcm:<master db>:sweeps:schedule-changes`` (named after the master database,
like the heartbeat keys). Payload, JSON::

    {"tenant_id": "<uuid>", "schedule_id": "<uuid>", "change": "updated"}

``change`` is one of ``created``, ``updated``, ``paused``, ``resumed``, ``deleted``.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError

from eligibility_sweeps.redis_names import namespace
from rcm_kit.logging import get_logger

__all__ = ["ChangeKind", "ScheduleChange", "change_channel", "parse_change", "publish_change"]

log = get_logger(__name__)


class ChangeKind(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    PAUSED = "paused"
    RESUMED = "resumed"
    DELETED = "deleted"


@dataclass(frozen=True)
class ScheduleChange:
    tenant_id: UUID
    schedule_id: UUID
    change: ChangeKind


def change_channel(database_url: str) -> str:
    return f"{namespace(database_url)}:schedule-changes"


async def publish_change(
    redis: Redis,
    tenant_id: UUID,
    schedule_id: UUID,
    *,
    database_url: str,
    change: ChangeKind = ChangeKind.UPDATED,
) -> int:
    """Tell the supervisors that a schedule changed; the number that heard it."""
    payload = json.dumps(
        {"tenant_id": str(tenant_id), "schedule_id": str(schedule_id), "change": change.value}
    )
    receivers: int = await redis.publish(change_channel(database_url), payload)
    return receivers


async def publish_change_after_commit(
    redis: Redis,
    tenant_id: UUID,
    schedule_id: UUID,
    *,
    database_url: str,
    change: ChangeKind,
) -> None:
    """``publish_change`` for a background task: runs once the response has left, which
    is after the request's transaction committed; a Redis failure is logged, not
    raised (the supervisors' resync picks the change up)."""
    try:
        await publish_change(
            redis, tenant_id, schedule_id, database_url=database_url, change=change
        )
    except (RedisError, OSError) as error:
        log.warning(
            "schedule.change_signal_failed",
            schedule_id=str(schedule_id),
            change=change.value,
            error=type(error).__name__,
        )


def parse_change(data: bytes | str) -> ScheduleChange | None:
    """A message's payload as a ``ScheduleChange``; None when it is not one of ours."""
    try:
        value = json.loads(data)
        return ScheduleChange(
            tenant_id=UUID(value["tenant_id"]),
            schedule_id=UUID(value["schedule_id"]),
            change=ChangeKind(value["change"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
