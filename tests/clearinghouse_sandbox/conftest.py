"""One sandbox on a real socket for the package; each test starts from its defaults."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import RunningServer
from tests.sandbox_support import SandboxClient, start_sandbox


@pytest.fixture(scope="session")
async def sandbox_server() -> AsyncIterator[RunningServer]:
    server = await start_sandbox()
    yield server
    await server.stop()


@pytest.fixture
async def sandbox(sandbox_server: RunningServer) -> AsyncIterator[SandboxClient]:
    async with SandboxClient(sandbox_server.url) as client:
        await client.reset()
        yield client
