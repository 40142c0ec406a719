"""Fixtures shared by the dispatcher and delivery tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from rcm_kit.plugins import Plugin
from tests.contract_registry.delivery_support import MailCatcher, World, open_world


@pytest.fixture
async def world(
    server_url: str, redis_url: str, plugins: list[Plugin], migrations_dir: Path
) -> AsyncIterator[World]:
    """A private master database whose tenants the test creates."""
    async with open_world(server_url, redis_url, plugins, migrations_dir) as opened:
        yield opened


@pytest.fixture
def smtp() -> Iterator[MailCatcher]:
    """A real SMTP server on a free port, capturing every mail."""
    catcher = MailCatcher().start()
    yield catcher
    catcher.stop()
