"""Fixtures of the supervisor tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from rcm_kit.plugins import Plugin
from tests.eligibility_sweeps.supervisor.support import Cluster


@pytest.fixture
async def cluster(
    server_url: str, redis_url: str, plugins: list[Plugin], migrations_dir: Path
) -> AsyncIterator[Cluster]:
    """A private master database whose tenants the test creates; dropped afterwards with
    the jobs its tenants left in Redis."""
    opened = await Cluster(server_url, redis_url, plugins, migrations_dir).open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()
