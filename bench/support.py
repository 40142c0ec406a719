"""What the benchmarks share: the run's surroundings (a private master database on the
configured server, the processes started for it, the report folder), the readings they
take from ``/proc`` and the machine line of every report.

A run is ``async with workspace(report_dir, "name") as ws:``: it resolves PostgreSQL and
Redis (``DATABASE_URL`` and ``REDIS_URL`` win when set; only the server of
``DATABASE_URL`` is used), names a master database ``rcmb_<hex>`` of its own, and on the
way out stops every process it started and drops that database with its tenants'.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import resource
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from rcm_kit import provision
from rcm_kit.auth import issue_token
from rcm_kit.db import create_engine, database_url_for
from rcm_kit.devinfra import resolve_infra
from rcm_kit.plugins import load_plugins
from rcm_kit.tenancy import Tenant

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
LOOPBACK = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
UP_WITHIN_SECONDS = 30.0


def log(message: str) -> None:
    """Progress on stderr, so that stdout carries only the report."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- CPU from /proc


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def children_cpu_seconds() -> float:
    """CPU seconds of this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    """CPU seconds every core spent busy since boot (user, nice, system, irq, steal)."""
    first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def postgres_backends(database: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to ``database``, found by the
    process title PostgreSQL sets (``postgres: ... user database host(port) state``).
    Empty when the server runs on another host."""
    wanted = database.encode()
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes()
            if title.startswith(b"postgres:") and wanted in title.replace(b"\0", b" ").split():
                found[int(entry.name)] = process_cpu_seconds(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return found


# ---------------------------------------------------------------- the machine


def machine() -> dict[str, str]:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = "?"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "os": platform.platform(),
    }


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_line(m: dict[str, str], load: str | None = None) -> str:
    """The report's first bullet; ``load``, the load average at the start, when known."""
    line = f"- **Machine**: {m['cpu']}, {m['cores']} cores, {m['memory']} RAM; {m['os']}"
    return line + (f"; load average {load} at the start" if load else "")


def versions(*packages: str) -> dict[str, str]:
    """Python's version and the installed packages'."""
    return {"python": platform.python_version(), **{name: version(name) for name in packages}}


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    proc: subprocess.Popen[bytes]


class Processes:
    """Python processes started from the repository, each logging to ``<name>.log`` in
    ``log_dir``; ``stop_all`` ends them (SIGTERM, then SIGKILL after 10 s)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: list[subprocess.Popen[bytes]] = []
        self.names: dict[int, str] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.running.append(proc)
        self.names[proc.pid] = name
        return proc

    async def wait_until_up(self, proc: subprocess.Popen[bytes], url: str) -> None:
        """Until ``url`` answers 200."""
        async with httpx.AsyncClient(timeout=1) as client:

            async def answers() -> bool:
                try:
                    return (await client.get(url)).status_code == 200
                except httpx.HTTPError:
                    return False

            await self._wait(proc, answers, url)

    async def wait_until_listening(self, proc: subprocess.Popen[bytes], port: int) -> None:
        """Until the loopback ``port`` accepts a connection."""

        async def accepts() -> bool:
            try:
                _, writer = await asyncio.open_connection(LOOPBACK, port)
            except OSError:
                return False
            writer.close()
            await writer.wait_closed()
            return True

        await self._wait(proc, accepts, f"{LOOPBACK}:{port}")

    async def _wait(
        self, proc: subprocess.Popen[bytes], ready: Callable[[], Awaitable[bool]], what: str
    ) -> None:
        name = self.names[proc.pid]
        deadline = time.monotonic() + UP_WITHIN_SECONDS
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = await asyncio.to_thread(self._log_tail, name)
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")
            if await ready():
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{name} did not answer {what} within {UP_WITHIN_SECONDS:g} s")

    def _log_tail(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")[-2000:]

    def stop_all(self) -> None:
        for proc in reversed(self.running):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.running:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_loadgen(args: list[str]) -> tuple[dict[str, Any], float]:
    """Run ``bench.loadgen``; return its result and its CPU share of one core."""
    cpu_before = children_cpu_seconds()
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    return json.loads(out.stdout), (children_cpu_seconds() - cpu_before) / wall


# ---------------------------------------------------------------- database


async def postgres_settings(server_url: str, *names: str) -> dict[str, str]:
    """``SHOW name`` for each of ``names`` on the server of ``server_url``."""
    url = make_url(server_url)
    conn = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database="postgres"
    )
    try:
        return {name: str(await conn.fetchval(f"SHOW {name}")) for name in names}
    finally:
        await conn.close()


async def postgres_version(server_url: str) -> str:
    return (await postgres_settings(server_url, "server_version"))["server_version"]


async def create_tenants(master_url: str, tenants: Iterable[tuple[str, str]]) -> list[Tenant]:
    """The master database at ``master_url``, migrated, and a tenant per (slug, name)."""
    migrations_dir = REPO / "migrations"
    await provision.migrate_master(master_url, migrations_dir)
    master = create_engine(master_url, pool_size=1, app_name="bench")
    plugins = load_plugins()
    try:
        return [
            await provision.create_tenant(master, plugins, migrations_dir, slug=slug, name=name)
            for slug, name in tenants
        ]
    finally:
        await master.dispose()


@asynccontextmanager
async def bulk_load(database_url: str, *, analyze: bool = False) -> AsyncIterator[AsyncConnection]:
    """One transaction on ``database_url``; with ``analyze``, ``ANALYZE`` once it has
    committed, so that the planner knows the rows loaded in bulk."""
    engine = create_engine(database_url, pool_size=1, app_name="bench")
    try:
        async with engine.begin() as conn:
            yield conn
        if analyze:
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(sa.text("ANALYZE"))
    finally:
        await engine.dispose()


# ---------------------------------------------------------------- a run


def write_report(stem: Path, markdown: str, raw: dict[str, Any]) -> Path:
    """``stem.md`` and ``stem.json`` (the raw figures); the path of the markdown."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(raw, indent=2, default=str))
    path = stem.with_suffix(".md")
    path.write_text(markdown)
    return path


@dataclass
class Workspace:
    """One run of a benchmark: its report folder and stamp, a folder for the logs of
    the processes it starts, a private master database and a JWT secret."""

    name: str
    report_dir: Path
    started: datetime
    server_url: str
    redis_url: str
    database: str
    log_level: str
    load_average: str
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    processes: Processes = field(init=False)

    def __post_init__(self) -> None:
        self.processes = Processes(self.report_dir / f"{self.name}-{self.stamp}-logs")

    @property
    def stamp(self) -> str:
        return self.started.strftime("%Y%m%d-%H%M%S")

    @property
    def started_label(self) -> str:
        return self.started.strftime("%Y-%m-%d %H:%M UTC")

    @property
    def log_dir(self) -> Path:
        return self.processes.log_dir

    @property
    def master_url(self) -> str:
        return database_url_for(self.server_url, self.database)

    def token(self, tenant_id: UUID, *perms: str, ttl_seconds: int = 3600) -> str:
        return issue_token(
            self.secret,
            tenant_id=tenant_id,
            perms=list(perms),
            subject="bench",
            ttl_seconds=ttl_seconds,
        )

    def serve(
        self,
        name: str,
        module: str,
        prefix: str,
        env: dict[str, str] | None = None,
        *,
        database: bool = False,
    ) -> Server:
        """``python -m module`` on a free loopback port (``{prefix}_HOST``,
        ``{prefix}_PORT``), JSON logs at the run's level; with ``database``, on the
        run's master database, Redis and JWT secret. ``python -m`` runs the console
        script's main() in a process whose pid is the server's own (no wrapper), so
        its CPU time can be read from /proc."""
        port = free_port()
        full = {"LOG_LEVEL": self.log_level, "LOG_FORMAT": "json"}
        if database:
            full |= {
                "DATABASE_URL": self.master_url,
                "REDIS_URL": self.redis_url,
                "JWT_SECRET": self.secret,
            }
        full |= {f"{prefix}_HOST": LOOPBACK, f"{prefix}_PORT": str(port)} | (env or {})
        proc = self.processes.start(name, ["-m", module], full)
        return Server(name, f"http://{LOOPBACK}:{port}", proc)

    def contracts_api(self) -> Server:
        return self.serve("contracts-api", "contract_registry.app", "CONTRACTS_API", database=True)

    def gateway(self, name: str, contracts_api: str) -> Server:
        """A gateway in front of ``contracts_api``; the sweeps service is not there."""
        unused = f"http://{LOOPBACK}:{free_port()}"
        return self.serve(
            name,
            "gateway.app",
            "GATEWAY",
            {"CONTRACTS_API_URL": contracts_api, "SWEEPS_API_URL": unused},
        )

    async def wait_until_up(self, server: Server, path: str = "/healthz") -> None:
        await self.processes.wait_until_up(server.proc, server.url + path)

    async def write(self, markdown: str, raw: dict[str, Any]) -> Path:
        """The report, as ``<name>-<stamp>.md`` and ``.json`` in the report folder."""
        stem = self.report_dir / f"{self.name}-{self.stamp}"
        return await asyncio.to_thread(write_report, stem, markdown, raw)


@asynccontextmanager
async def workspace(
    report_dir: Path, name: str, *, log_level: str = "INFO"
) -> AsyncIterator[Workspace]:
    """See the module docstring. ``log_level``: ``LOG_LEVEL`` of the servers started."""
    started, load = datetime.now(UTC), load_average()
    infra = await resolve_infra(start_embedded=True)
    ws = Workspace(
        name=name,
        report_dir=report_dir,
        started=started,
        server_url=infra.database_url,
        redis_url=infra.redis_url,
        database=f"rcmb_{secrets.token_hex(4)}",
        log_level=log_level,
        load_average=load,
    )
    await asyncio.to_thread(ws.log_dir.mkdir, parents=True)
    try:
        yield ws
    finally:
        await asyncio.to_thread(ws.processes.stop_all)
        await provision.drop_databases(ws.server_url, ws.database)
