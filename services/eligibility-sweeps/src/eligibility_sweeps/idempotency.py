"""``Idempotency-Key`` on the POSTs that create checks and runs (API.md, "Retries").

The same key from the same caller on the same route within 24 hours returns the first
answer and creates nothing new. How:

1. ``reserve`` inserts ``(scope, key)`` with no answer yet and commits. The primary key
   decides between two concurrent requests with one key: exactly one inserts.
2. The request runs; ``remember`` stores its status and body on the row.
3. A later request with the key finds the row: the stored answer is replayed; a row
   still without an answer means the first request is in flight (409, retry shortly);
   a different body under the same key is a client bug (422).

A request that fails (any error) ``forget``s its reservation, so the client's retry is
handled afresh: nothing was created. Rows older than 24 hours are replaced on reuse.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.models import idempotency_key
from rcm_kit.errors import Conflict, InvalidInput

KEEP_FOR = timedelta(hours=24)
MAX_KEY_LENGTH = 255
_table = idempotency_key


class RequestInFlight(Conflict):
    title = "Request in progress"


@dataclass(frozen=True, slots=True)
class Replay:
    status_code: int
    body: Any


@dataclass(frozen=True, slots=True)
class Reservation:
    scope: str
    key: str


def request_digest(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(["header", "Idempotency-Key"], "must be 1 to 255 printable characters")


async def reserve(
    session: AsyncSession, *, scope: str, key: str, digest: str, now: datetime
) -> Reservation | Replay:
    """Claim ``key`` for this request (commit before doing the work), or the answer of
    the request that claimed it first."""
    _check_key(key)
    await session.execute(
        sa.delete(_table).where(
            _table.c.scope == scope, _table.c.key == key, _table.c.created_at < now - KEEP_FOR
        )
    )
    inserted = await session.execute(
        insert(_table)
        .values(scope=scope, key=key, request_digest=digest, created_at=now)
        .on_conflict_do_nothing()
        .returning(_table.c.key)
    )
    if inserted.first() is not None:
        return Reservation(scope, key)
    row = (
        await session.execute(sa.select(_table).where(_table.c.scope == scope, _table.c.key == key))
    ).one()
    if row.request_digest != digest:
        raise InvalidInput(
            ["header", "Idempotency-Key"],
            "already used with a different request body; use a new key for a new request",
        )
    if row.status_code is None:
        raise RequestInFlight(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            headers={"Retry-After": "1"},
        )
    return Replay(int(row.status_code), row.response)


async def remember(
    session: AsyncSession, reservation: Reservation, *, status_code: int, body: Any
) -> None:
    await session.execute(
        sa.update(_table)
        .where(_table.c.scope == reservation.scope, _table.c.key == reservation.key)
        .values(status_code=status_code, response=body)
    )


async def forget(session: AsyncSession, reservation: Reservation) -> None:
    await session.execute(
        sa.delete(_table).where(
            _table.c.scope == reservation.scope,
            _table.c.key == reservation.key,
            _table.c.status_code.is_(None),
        )
    )
