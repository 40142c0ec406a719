"""rcm_kit.devinfra against real servers: the localhost ones of this machine and embedded ones."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from rcm_kit import devinfra
from rcm_kit.devinfra import Infra, InfraUnavailable, resolve_infra, stop_embedded

LOCAL_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("DATABASE_URL", "REDIS_URL", "RCM_INFRA_SKIP_LOCALHOST"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def private_root(no_env: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private repository root (RCM_DATA_DIR) whose embedded servers are always stopped."""
    # Not tmp_path: pytest keeps its base dir 0700, which the embedded PostgreSQL's OS user
    # (when running as root) cannot traverse.
    root = Path(tempfile.mkdtemp(prefix="rcm-devinfra-test-"))
    root.chmod(0o755)
    no_env.setenv("RCM_DATA_DIR", str(root))
    try:
        yield root
    finally:
        stop_embedded()
        shutil.rmtree(root, ignore_errors=True)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _records() -> dict[str, dict[str, object]]:
    data: dict[str, dict[str, object]] = json.loads(
        (devinfra.data_dir() / "infra.json").read_text()
    )
    return data


async def _select_one(database_url: str) -> int:
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""), timeout=5)
    try:
        return int(await conn.fetchval("select 1"))
    finally:
        await conn.close()


async def _ping(redis_url: str) -> bool:
    client = aioredis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        return bool(await client.ping())
    finally:
        await client.aclose()


async def test_env_urls_win(no_env: pytest.MonkeyPatch) -> None:
    db = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    rd = "redis://127.0.0.1:6379/5"
    no_env.setenv("DATABASE_URL", db)
    no_env.setenv("REDIS_URL", rd)
    infra = await resolve_infra()
    assert infra == Infra(
        database_url=db, redis_url=rd, postgres_source="environment", redis_source="environment"
    )


async def test_env_urls_win_even_when_they_do_not_answer(no_env: pytest.MonkeyPatch) -> None:
    db = "postgresql+asyncpg://app:secret@127.0.0.1:1/rcm"
    rd = "redis://127.0.0.1:1/0"
    no_env.setenv("DATABASE_URL", db)
    no_env.setenv("REDIS_URL", rd)
    infra = await resolve_infra(start_embedded=True)
    assert (infra.database_url, infra.redis_url) == (db, rd)
    assert (infra.postgres_source, infra.redis_source) == ("environment", "environment")


async def test_env_database_is_created_when_missing(no_env: pytest.MonkeyPatch) -> None:
    name = f"rcm_devinfra_{uuid.uuid4().hex[:10]}"
    no_env.setenv("DATABASE_URL", f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
    admin = await asyncpg.connect(LOCAL_PG_ADMIN, timeout=5)
    try:
        infra = await resolve_infra()
        assert infra.database_url.endswith("/" + name)
        assert await admin.fetchval("select 1 from pg_database where datname = $1", name) == 1
    finally:
        await admin.execute(f'drop database if exists "{name}"')
        await admin.close()


async def test_localhost_is_found(no_env: pytest.MonkeyPatch) -> None:
    infra = await resolve_infra()
    assert infra.postgres_source == "localhost"
    assert infra.redis_source == "localhost"
    assert infra.database_url == "postgresql+asyncpg://postgres@127.0.0.1:5432/rcm"
    assert infra.redis_url == "redis://127.0.0.1:6379/0"
    assert await _select_one(infra.database_url) == 1
    assert await _ping(infra.redis_url)


async def test_nothing_found_raises(private_root: Path) -> None:
    with pytest.raises(InfraUnavailable, match=r"PostgreSQL.*Redis"):
        await resolve_infra(_probe_localhost=False)
    assert stop_embedded() == []


def test_mask_url() -> None:
    assert (
        devinfra.mask_url("postgresql+asyncpg://u:pw@h:1/d") == "postgresql+asyncpg://u:***@h:1/d"
    )
    assert devinfra.mask_url("redis://h:1/0") == "redis://h:1/0"


async def test_embedded_start_reuse_stop(private_root: Path) -> None:
    env = {**os.environ, "RCM_INFRA_SKIP_LOCALHOST": "1"}
    # Start from another process: the servers must outlive it.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rcm_kit.devinfra",
        "env",
        "--start",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    exports = dict(line.removeprefix("export ").split("=", 1) for line in out.decode().splitlines())
    assert "from embedded" in err.decode()

    infra = await resolve_infra(_probe_localhost=False)
    assert (infra.postgres_source, infra.redis_source) == ("embedded", "embedded")
    assert exports == {
        "DATABASE_URL": f"'{infra.database_url}'",
        "REDIS_URL": f"'{infra.redis_url}'",
    }
    assert infra.database_url.startswith("postgresql+asyncpg://postgres@127.0.0.1:")
    assert infra.database_url.endswith("/rcm")
    assert await _select_one(infra.database_url) == 1
    assert await _ping(infra.redis_url)

    before = _records()
    again = await resolve_infra(start_embedded=True, _probe_localhost=False)
    assert again == infra
    assert _records() == before
    pg_port, redis_port = int(str(before["postgres"]["port"])), int(str(before["redis"]["port"]))
    assert _answers(pg_port)
    assert _answers(redis_port)

    stopped = stop_embedded()
    assert len(stopped) == 2
    assert not _answers(pg_port)
    assert not _answers(redis_port)
    assert not (devinfra.data_dir() / "infra.json").exists()
    assert stop_embedded() == []
    with pytest.raises(InfraUnavailable):
        await resolve_infra(_probe_localhost=False)
