"""Names in Redis, all under ``rcm:<master database>:sweeps``: deployments that share one
Redis (staging beside production, a test run beside another) never take each other's
jobs, slots, heartbeats or signals. Job ids (``sweep.run:<tenant>:<run>``) need no
prefix: they carry a tenant id, which is unique anyway."""

from __future__ import annotations

from sqlalchemy.engine import make_url


def namespace(database_url: str) -> str:
    """``rcm:<master database>:sweeps``."""
    return f"rcm:{make_url(database_url).database or 'rcm'}:sweeps"


def sweep_queue(database_url: str) -> str:
    """The arq queue every sweep job goes through."""
    return f"{namespace(database_url)}:queue"


def gate_prefix(database_url: str) -> str:
    """The sweep slots of ``INGEST_QUEUE_CONCURRENCY`` (``worker.gate``)."""
    return f"{namespace(database_url)}:gate"
