"""Fixtures of the sweep worker tests: the worker's own Redis database (emptied before
each test), workers that stop when the test ends, and a tenant routed to the sandbox
(``world``, from ``checks_support``) with a facility for visits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from arq.connections import ArqRedis

from eligibility_sweeps.run.service import open_arq_pool
from tests.eligibility_sweeps.checks_support import World
from tests.eligibility_sweeps.worker.support import Roster, Workers, make_roster, worker_redis_url


@pytest.fixture
async def worker_redis(redis_url: str) -> str:
    url = worker_redis_url(redis_url)
    client = ArqRedis.from_url(url)
    await client.flushdb()
    await client.aclose()
    return url


@pytest.fixture
async def arq(worker_redis: str, master_url: str) -> AsyncIterator[ArqRedis]:
    """Enqueues into the queue the workers of this session's master database read."""
    client = open_arq_pool(worker_redis, master_url)
    yield client
    await client.aclose()


@pytest.fixture
async def workers(master_url: str, worker_redis: str) -> AsyncIterator[Workers]:
    made = Workers(master_url, worker_redis)
    try:
        yield made
    finally:
        await made.stop_all()


@pytest.fixture
async def roster(world: World, arq: ArqRedis) -> Roster:
    return await make_roster(world, arq)
