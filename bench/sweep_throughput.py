"""Sweep throughput: members per second of one sweep through real ``sweeps-worker``
processes, from the run's creation to COMPLETED (issue 5).

Real processes on loopback, started here: a private master database (dropped at the
end) with a fresh tenant per case, each holding ``--members`` members (10,000) with one
active coverage policy (subscriber ids ``BENCH000000``..., which the sandbox answers
ACTIVE) and one SCHEDULED visit three days from now at a facility with an NPI, loaded in
bulk with ``generate_series`` SQL; a billing entity with an NPI and a tax id. The payer
is routed through one trading partner (``--transport``, ``core-mime`` by default, the
production default) at the clearinghouse sandbox, added through the API with no
``max_requests_per_second`` and no payer limits or daily cap, so no limit applies and
the limits cost only their Redis round trips. Processes: the sandbox (its latency per
270 set with ``PUT /sandbox/config`` per case), ``sweeps-api`` and, per case, one or two
``sweeps-worker`` processes (``python -m eligibility_sweeps.worker.main``, production
defaults), started for the case and stopped after it. The API and the workers share a
Redis database of the bench's own (``BENCH_REDIS_DB``; the suite uses 0 and 11), emptied
before each case, so no slot, limit or job leaks between cases or into the tests.

A case: ``POST /api/v1/eligibility/sweeps/runs`` (the run over today + 1 .. + 7, which
holds every member); the run row is polled until it is final; the rate is the run's
members over ``completed_at - created_at`` (both from the run row; the counts come from
the member rows through ``GET .../runs/{id}``). Cases: ``--latencies`` (0 and 200 ms)
x ``--workers`` (1 and 2 processes).

Baselines in the same run, and the figures' ratios to them:

- **raw round trip**: pre-built 270s posted straight to the sandbox by
  ``bench.check_throughput``'s load driver (its own process, closed loop) with as many in
  flight as a sweep has (``SWEEP_MEMBER_CONCURRENCY``), at each latency: the partner's
  ceiling for that concurrency;
- **serial fan-out**: the product document's design ("serial per-tenant"), a sweep with
  ``SWEEP_MEMBER_CONCURRENCY=1`` over ``--serial-members`` members (200) at
  ``--serial-latency`` (200 ms), one worker.

Also measured, to say what bounds each figure: CPU seconds (``/proc``) of each worker,
the sandbox, sweeps-api, the PostgreSQL backends serving the case's tenant database, this
process, and the machine as a whole; each worker's peak RSS (``VmHWM``) and the members
it brought to an outcome (its ``/metrics``).

``python -m bench.sweep_throughput`` runs it alone; ``run(report_dir)`` returns the
report's markdown and writes it, with the raw figures, to ``report_dir``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID, uuid4

import httpx
import sqlalchemy as sa
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.check_throughput import (
    EIN,
    EXPECT_271,
    NPI,
    PATHS,
    PAYER_CODES,
    PG_SETTINGS,
    PROVIDER,
    RECEIVER,
    SENDER,
    Probe,
    core_request,
    envelope_for,
    inquiry_for,
    run_driver,
)
from bench.support import (
    LOOPBACK,
    RESULTS,
    Server,
    Workspace,
    bulk_load,
    create_tenants,
    free_port,
    load_average,
    log,
    machine,
    machine_line,
    postgres_settings,
    process_cpu_seconds,
    versions,
    workspace,
)
from eligibility_sweeps.models import eligibility_sweep_run
from eligibility_sweeps.worker.settings import WorkerSettings
from eligibility_sweeps.x12.build270 import build_270
from rcm_kit.db import create_engine
from rcm_kit.tenancy import Tenant
from rcm_reference.models import billing_entity, facility, payer

RUNS = "/api/v1/eligibility/sweeps/runs"
PARTNERS = "/api/v1/admin/trading-partners"
# A Redis database of the bench's own: the suite enqueues into 0 and runs its workers on
# 11, and a worker here must never take (and drop, as an unknown tenant) a test's job.
BENCH_REDIS_DB = 13
RAW_270S = 200  # distinct pre-built 270s for the raw baseline, sent in turn
POLL_SECONDS = 0.2
SAMPLE_SECONDS = 1.0  # workers' CPU, sampled while the run is live
ROSTER_EVENT, LANE_EVENT = "sweep.roster_written", "sweep.lane_window"
FINAL = ("COMPLETED", "FAILED", "CANCELLED")
# Targets of issue 5 (members/s).
TARGET_PER_WORKER_AT_200 = 100.0
TARGET_TWO_WORKERS_AT_0 = 500.0
# How the report reads a case's bound (see ``bound``).
BUSY_MACHINE = 0.85  # share of every core
BUSY_PROCESS = 0.8  # share of one core
NEAR_CEILING = 0.8  # share of the raw round trip rate
FULL_LIMIT = 0.7  # members in flight, as a share of SWEEP_MEMBER_CONCURRENCY

DEFAULTS = WorkerSettings.model_fields


def _default(name: str) -> int:
    value = DEFAULTS[name].default
    assert isinstance(value, int)
    return value


@dataclass(frozen=True)
class Options:
    members: int = 10_000
    latencies: tuple[int, ...] = (0, 200)  # ms per 270 at the sandbox
    workers: tuple[int, ...] = (1, 2)  # sweeps-worker processes
    serial_members: int = 200
    serial_latency: int = 200
    member_concurrency: int = _default("SWEEP_MEMBER_CONCURRENCY")
    transport: str = "core-mime"
    raw_seconds: float = 6.0  # measured per latency, raw baseline
    log_level: str = "INFO"


@dataclass(frozen=True)
class Case:
    key: str
    latency_ms: int
    workers: int
    members: int
    member_concurrency: int
    serial: bool = False

    @property
    def label(self) -> str:
        if self.serial:
            return f"serial fan-out, {self.latency_ms} ms, 1 worker"
        return f"{self.latency_ms} ms x {self.workers} worker{'s' if self.workers > 1 else ''}"


def cases_of(options: Options) -> list[Case]:
    cases = [
        Case(f"l{lat}w{n}", lat, n, options.members, options.member_concurrency)
        for lat in options.latencies
        for n in options.workers
    ]
    if options.serial_members:
        serial = Case("serial", options.serial_latency, 1, options.serial_members, 1, serial=True)
        cases.append(serial)
    return cases


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Dataset:
    tenant: Tenant
    payer_id: UUID
    visit: date


MEMBERS_SQL = [
    """INSERT INTO member.member
        (member_id, external_id, first_name, last_name, date_of_birth, gender)
    SELECT md5('m' || n)::uuid, 'MRN' || lpad(n::text, 7, '0'), 'Ana' || chr(65 + n % 26),
           'Lee' || chr(65 + n / 26 % 26), date '1950-01-01' + n * 7 % 20000,
           CASE WHEN n % 2 = 0 THEN 'F' ELSE 'M' END
    FROM generate_series(0, :members - 1) n""",
    """INSERT INTO member.coverage_policy (member_id, payer_id, subscriber_id, effective_from)
    SELECT md5('m' || n)::uuid, CAST(:payer_id AS uuid), 'BENCH' || lpad(n::text, 6, '0'),
           date '2025-01-01'
    FROM generate_series(0, :members - 1) n""",
    """INSERT INTO service.service_event
        (external_id, member_id, facility_id, service_date, status)
    SELECT 'V' || n, md5('m' || n)::uuid, CAST(:facility_id AS uuid), CAST(:visit AS date),
           'SCHEDULED'
    FROM generate_series(0, :members - 1) n""",
]


async def load(tenant: Tenant, members: int, transport: str, visit: date) -> Dataset:
    """A payer, a billing entity and a facility with an NPI, and the members (one policy
    and one visit each) in one transaction; then ``ANALYZE``."""
    payer_id, facility_id = uuid4(), uuid4()
    async with bulk_load(tenant.database_url, analyze=True) as conn:
        await conn.execute(
            sa.insert(payer).values(
                payer_id=payer_id, payer_code=PAYER_CODES[transport], name=f"Plan {transport}"
            )
        )
        await conn.execute(
            sa.insert(billing_entity).values(
                billing_entity_code="BE1", name=PROVIDER, npi=NPI, tax_id=EIN
            )
        )
        await conn.execute(
            sa.insert(facility).values(
                facility_id=facility_id, facility_code="F1", name=PROVIDER, npi=NPI
            )
        )
        params = {
            "members": members,
            "payer_id": str(payer_id),
            "facility_id": str(facility_id),
            "visit": visit,
        }
        for sql in MEMBERS_SQL:
            await conn.execute(sa.text(sql), params)
    return Dataset(tenant=tenant, payer_id=payer_id, visit=visit)


# ---------------------------------------------------------------- processes


def bench_redis_url(redis_url: str) -> str:
    return urlunsplit(urlsplit(redis_url)._replace(path=f"/{BENCH_REDIS_DB}"))


async def empty_redis(url: str) -> None:
    client = Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


@dataclass(frozen=True)
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    health: str  # http://127.0.0.1:<port>


async def start_workers(ws: Workspace, case: Case, redis_url: str, log_level: str) -> list[Worker]:
    """``case.workers`` sweeps-worker processes, up (``/healthz``) before this returns."""
    workers = []
    for n in range(1, case.workers + 1):
        port = free_port()
        # serve() names the port SWEEPS_WORKER_PORT; the worker's is ..._HEALTH_PORT.
        server = ws.serve(
            f"sweeps-worker-{case.key}-{n}",
            "eligibility_sweeps.worker.main",
            "SWEEPS_WORKER",
            {
                "REDIS_URL": redis_url,
                "SWEEPS_WORKER_HEALTH_PORT": str(port),
                "SWEEP_MEMBER_CONCURRENCY": str(case.member_concurrency),
                "LOG_LEVEL": log_level,
            },
            database=True,
        )
        workers.append(Worker(server.name, server.proc, f"http://{LOOPBACK}:{port}"))
    for worker in workers:
        await ws.processes.wait_until_up(worker.proc, worker.health + "/healthz")
    return workers


async def stop_workers(workers: list[Worker]) -> None:
    for worker in workers:
        if worker.proc.poll() is None:
            worker.proc.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            await asyncio.to_thread(worker.proc.wait, 40)
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            await asyncio.to_thread(worker.proc.wait)


def worker_events(ws: Workspace, worker: Worker) -> list[dict[str, Any]]:
    """The worker's sweep events from its JSON log."""
    path = ws.log_dir / f"{worker.name}.log"
    found = []
    for line in path.read_text(errors="replace").splitlines():
        if '"event": "sweep.' in line:
            event = json.loads(line)
            if event["event"] in (ROSTER_EVENT, LANE_EVENT):
                found.append(event)
    return found


def busiest_worker_share(samples: list[tuple[float, list[float]]]) -> float:
    """The busiest worker's share of one core in each sampling interval, averaged over
    the intervals: with lanes on one worker at a time, this is what a worker ran at
    while it held them, which the whole case's average hides."""
    busiest = [
        max((cpu - was) / (at - then) for cpu, was in zip(now, before, strict=True))
        for (then, before), (at, now) in itertools.pairwise(samples)
        if at > then
    ]
    return sum(busiest) / len(busiest) if busiest else 0.0


def first_window_lanes(events: list[list[dict[str, Any]]]) -> list[int]:
    """Lanes each worker ran in the first send window: the lane windows that ended
    before any lane had run twice."""
    ends = sorted(
        (e["timestamp"], worker, e["lane"])
        for worker, ev in enumerate(events)
        for e in ev
        if e["event"] == LANE_EVENT
    )
    counts, seen = [0] * len(events), set()
    for _, worker, lane in ends:
        if lane in seen:
            break
        seen.add(lane)
        counts[worker] += 1
    return counts


def memory_kib(pid: int, name: str) -> int:
    """``VmHWM`` (peak resident set) or ``VmRSS`` of a live process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {name} in /proc/{pid}/status")


async def members_settled(client: httpx.AsyncClient, worker: Worker) -> float:
    """Members the worker brought to an outcome (its ``sweep_members_total``)."""
    text = (await client.get(worker.health + "/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("sweep_members_total{")
    )


async def add_partner(api: str, sandbox: str, data: Dataset, transport: str, token: str) -> str:
    """The partner routing the tenant's payer to the sandbox, with no limits."""
    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        response = await client.post(
            PARTNERS,
            headers={"Authorization": f"Bearer {token}"},
            json={
                "name": f"Sandbox {transport}",
                "transport": transport,
                "endpoint_url": sandbox + PATHS[transport],
                "auth": {"type": "none"},
                "sender_id": SENDER,
                "receiver_id": RECEIVER,
                "usage_indicator": "T",
                "payer_ids": [str(data.payer_id)],
            },
        )
    if response.status_code != 201:
        raise RuntimeError(f"partner: {response.status_code} {response.text}")
    partner = response.json()
    if partner["max_requests_per_second"] is not None or partner["payer_limits"]:
        raise RuntimeError(f"partner has rate limits: {partner}")
    return str(partner["trading_partner_id"])


async def set_latency(sandbox: str, latency_ms: int) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.put(sandbox + "/sandbox/config", json={"latency_ms": latency_ms})
        response.raise_for_status()


# ---------------------------------------------------------------- baselines


async def raw_baseline(
    ws: Workspace, sandbox: Server, case: Case, options: Options
) -> dict[str, Any]:
    """The partner round trip alone at the case's latency and concurrency: pre-built 270s
    posted to the sandbox by ``bench.check_throughput``'s driver (its own process)."""
    await set_latency(sandbox.url, case.latency_ms)
    transport, level, seconds = options.transport, case.member_concurrency, options.raw_seconds
    day = date.today() + timedelta(days=3)
    bodies: list[str] = []
    content_type = "application/edi-x12"
    async with httpx.AsyncClient() as client:
        for n in range(RAW_270S):
            person = (uuid4(), f"BENCH{n:06d}", "AnaA", "LeeA", date(1960, 1, 1))
            x12 = build_270(envelope_for(800_000 + n), inquiry_for(person, transport, day))
            if transport == "core-mime":
                body, content_type = core_request(sandbox.url, x12, client)
                bodies.append(body.decode("latin-1"))
            else:
                bodies.append(x12)
    spec = {
        "targets": {
            "raw": {
                "url": sandbox.url + PATHS[transport],
                "headers": {"Content-Type": content_type},
                "bodies": bodies,
                "expect": EXPECT_271.decode(),
            }
        },
        "levels": [level],
        "seconds": seconds,
        "block": seconds / 2,
        "warmup": 0.5,
        "pids": {"sandbox": sandbox.proc.pid},
        "database": ws.database,
    }
    path = ws.log_dir / f"raw-{case.latency_ms}ms-spec.json"
    await asyncio.to_thread(path.write_text, json.dumps(spec))
    results, _ = await asyncio.to_thread(run_driver, path)
    raw: dict[str, Any] = results[str(level)]["raw"]
    return raw


# ---------------------------------------------------------------- a case


async def run_case(
    ws: Workspace,
    case: Case,
    data: Dataset,
    api: Server,
    sandbox: Server,
    redis_url: str,
    options: Options,
) -> dict[str, Any]:
    """One sweep of ``case`` on its own tenant, with its own worker processes."""
    await empty_redis(redis_url)
    await set_latency(sandbox.url, case.latency_ms)
    workers = await start_workers(ws, case, redis_url, options.log_level)
    tenant = data.tenant
    token = ws.token(tenant.tenant_id, "eligibility.read", "eligibility.update")
    headers = {"Authorization": f"Bearer {token}"}
    engine = create_engine(tenant.database_url, pool_size=1, app_name="bench")
    pids = {"sandbox": sandbox.proc.pid, "api": api.proc.pid}
    pids |= {f"worker{n}": w.proc.pid for n, w in enumerate(workers, 1)}
    probe = Probe(pids, tenant.database_name)
    limit = 60.0 + case.members / 5  # at least 5 members/s, or the case has failed
    load = load_average()
    try:
        idle_rss = [memory_kib(w.proc.pid, "VmRSS") for w in workers]
        async with httpx.AsyncClient(base_url=api.url, timeout=30, headers=headers) as client:
            before, clock = probe.read(), time.perf_counter()
            response = await client.post(
                RUNS,
                json={
                    "name": f"Bench {case.label}",
                    "service_date_from": (data.visit - timedelta(days=2)).isoformat(),
                    "service_date_to": (data.visit + timedelta(days=4)).isoformat(),
                },
            )
            if response.status_code != 202:
                raise RuntimeError(f"run: {response.status_code} {response.text}")
            run_id = UUID(response.json()["sweep_run_id"])
            samples: list[tuple[float, list[float]]] = []
            status = await wait_final(engine, run_id, clock + limit, workers, samples)
            after, wall = probe.read(), time.perf_counter() - clock
            cpu = Probe.spent(before, after)
            peak_rss = [memory_kib(w.proc.pid, "VmHWM") for w in workers]
            settled = [await members_settled(client, w) for w in workers]
            answer = (await client.get(f"{RUNS}/{run_id}")).json()
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(eligibility_sweep_run).where(
                        eligibility_sweep_run.c.sweep_run_id == run_id
                    )
                )
            ).one()
    finally:
        await stop_workers(workers)
        await engine.dispose()
    counts = answer["counts"]
    seconds = (row.completed_at - row.created_at).total_seconds() if row.completed_at else 0.0
    sending = (row.completed_at - row.roster_at).total_seconds() if row.completed_at else 0.0
    cpu["workers"] = sum(cpu[name] for name in pids if name.startswith("worker"))
    events = [await asyncio.to_thread(worker_events, ws, w) for w in workers]
    roster_ms = [e["duration_ms"] for ev in events for e in ev if e["event"] == ROSTER_EVENT]
    result = {
        "case": asdict(case),
        "load_average": load,
        "status": status,
        "counts": counts,
        "seconds": seconds,
        "rate": counts["total"] / seconds if seconds else 0.0,
        "to_start": (row.started_at - row.created_at).total_seconds(),
        "roster_ms": roster_ms[0] if roster_ms else None,
        "sending_rate": counts["total"] / sending if sending else 0.0,
        "wall": wall,
        "cpu_seconds": {name: round(value, 3) for name, value in cpu.items()},
        "idle_rss_kib": idle_rss,
        "peak_rss_kib": peak_rss,
        "settled_by_worker": settled,
        "lane_windows_by_worker": [sum(e["event"] == LANE_EVENT for e in ev) for ev in events],
        "first_window_lanes_by_worker": first_window_lanes(events),
        "busiest_worker_share": busiest_worker_share(samples),
    }
    log(
        f"{case.label}: {status}, {counts['received']:,} received / {counts['total']:,} "
        f"in {seconds:.1f} s = {result['rate']:,.1f} members/s"
    )
    return result


async def wait_final(
    engine: AsyncEngine,
    run_id: UUID,
    deadline: float,
    workers: list[Worker],
    samples: list[tuple[float, list[float]]],
) -> str:
    """Poll the run row until its status is final; meanwhile, every ``SAMPLE_SECONDS``,
    append (time, each worker's CPU seconds) to ``samples``."""
    query = sa.select(eligibility_sweep_run.c.status).where(
        eligibility_sweep_run.c.sweep_run_id == run_id
    )
    while True:
        now = time.perf_counter()
        if not samples or now - samples[-1][0] >= SAMPLE_SECONDS:
            samples.append((now, [process_cpu_seconds(w.proc.pid) for w in workers]))
        async with engine.connect() as conn:
            status = str((await conn.execute(query)).scalar_one())
        if status in FINAL:
            return status
        for worker in workers:
            if worker.proc.poll() is not None:
                raise RuntimeError(f"{worker.name} exited with {worker.proc.returncode}")
        if time.perf_counter() > deadline:
            raise RuntimeError(f"run {run_id} still {status} after the case's time limit")
        await asyncio.sleep(POLL_SECONDS)


# ---------------------------------------------------------------- report


def ceiling_rate(case: dict[str, Any], raws: dict[str, dict[str, Any]]) -> float | None:
    """The partner's ceiling for a case: the raw round trip rate at its latency and
    concurrency when measured; for the serial fan-out, one member per round trip."""
    if case["serial"]:
        return 1000 / case["latency_ms"] if case["latency_ms"] else None
    raw = raws.get(str(case["latency_ms"]))
    return float(raw["rate"]) if raw and raw["rate"] else None


def in_flight(result: dict[str, Any], raws: dict[str, dict[str, Any]]) -> float | None:
    """Members in flight on average (Little's law: the rate times a member's round trip,
    taken as the raw round trip's mean at the case's latency); None at 0 ms, where the
    round trip is mostly queueing for CPU and says nothing about the limit."""
    case = result["case"]
    raw = raws.get(str(case["latency_ms"]))
    if not case["latency_ms"]:
        return None
    seconds = case["latency_ms"] / 1000
    if raw and not case["serial"]:
        seconds = raw["latency_ms"]["mean"] / 1000
    return float(result["rate"]) * float(seconds)


def bound(result: dict[str, Any], partner: float | None, flying: float | None, cores: int) -> str:
    """What bounds a case, read from its CPU and its concurrency: the machine, one
    process's core, the sweep's member concurrency at the partner's latency; else
    waiting inside the worker."""
    case, cpu, wall = result["case"], result["cpu_seconds"], result["wall"]
    busy = cpu["machine"] / (wall * cores)
    shares = {
        name: cpu[name] / wall
        for name in cpu
        if (name.startswith("worker") and name != "workers") or name in ("sandbox", "api")
    }
    if case["workers"] > 1:
        shares["one worker at a time"] = result["busiest_worker_share"]
    top = max(shares, key=lambda name: shares[name])
    ceiling = result["rate"] / partner if partner else 0.0
    limit = case["member_concurrency"]
    if busy >= BUSY_MACHINE:
        return (
            f"CPU-bound: the machine ({busy:.0%} of {cores} cores busy; "
            f"the largest single process is {top} at {shares[top]:.0%} of a core)"
        )
    if shares[top] >= BUSY_PROCESS:
        return f"CPU-bound in {top} ({shares[top]:.0%} of one core; machine {busy:.0%} busy)"
    if flying is not None and flying >= FULL_LIMIT * limit:
        return (
            f"limit-bound: about {flying:.1f} of the {limit} members "
            f"`SWEEP_MEMBER_CONCURRENCY` allows are in flight (rate x round trip), at "
            f"{ceiling:.0%} of the partner's ceiling for {limit} in flight (machine "
            f"{busy:.0%} busy, {top} at {shares[top]:.0%} of a core)"
        )
    if ceiling >= NEAR_CEILING:
        return (
            f"latency-bound: {ceiling:.0%} of the partner's ceiling at this concurrency "
            f"(machine {busy:.0%} busy)"
        )
    return (
        f"neither CPU ({busy:.0%} busy, {top} at {shares[top]:.0%} of a core) nor the "
        f"partner ({ceiling:.0%} of its ceiling at this concurrency): waits inside the sweep"
    )


def _ms(seconds: float, count: int) -> str:
    return f"{seconds / count * 1000:,.2f}" if count else "-"


def _verdict(value: float, target: float) -> str:
    return "met" if value >= target else "**missed**"


def software(pg: dict[str, str]) -> dict[str, str]:
    names = ("arq", "httpx", "sqlalchemy", "asyncpg", "redis", "uvloop", "uvicorn", "aiohttp")
    return versions(*names) | pg


def render(
    info: dict[str, Any],
    options: Options,
    results: list[dict[str, Any]],
    raws: dict[str, dict[str, Any]],
) -> str:
    m, s = info["machine"], info["software"]
    cores = int(m["cores"])
    by_key = {r["case"]["key"]: r for r in results}
    serial = by_key.get("serial")
    lines = [
        f"# Sweep throughput, {info['started']}",
        "",
        machine_line(m, info["load_average"]),
        f"- **Software**: Python {s['python']}, arq {s['arq']}, httpx {s['httpx']}, "
        f"SQLAlchemy {s['sqlalchemy']}, asyncpg {s['asyncpg']}, redis-py {s['redis']}, "
        f"uvloop {s['uvloop']}; PostgreSQL {s['server_version']} (fsync {s['fsync']}, "
        f"synchronous_commit {s['synchronous_commit']}, shared_buffers {s['shared_buffers']}); "
        f"raw baseline driver aiohttp {s['aiohttp']}",
        f"- **Data**: per case a fresh tenant with N members (one active policy each, "
        f"subscriber ids `BENCH000000`..., answered ACTIVE by the sandbox) and one SCHEDULED "
        f"visit each on {info['visit']} at a facility with an NPI; one payer routed through a "
        f"`{options.transport}` trading partner at the sandbox, added through the API with no "
        "`max_requests_per_second`, no payer limits and no daily cap (checked), so no limit "
        "applies.",
        f"- **Processes**: `clearinghouse-sandbox` (latency per 270 set per case), "
        f"`sweeps-api` (creates the run, enqueues `sweep.run`), and per case 1 or 2 "
        "`sweeps-worker` processes started for it and stopped after it, production defaults "
        f"but `SWEEP_MEMBER_CONCURRENCY` = {options.member_concurrency} "
        f"(`SWEEP_LANE_CONCURRENCY` {_default('SWEEP_LANE_CONCURRENCY')}, "
        f"`SWEEPS_WORKER_MAX_JOBS` {_default('SWEEPS_WORKER_MAX_JOBS')}, `TENANT_POOL_SIZE` "
        f"{DEFAULTS['TENANT_POOL_SIZE'].default}, `SWEEP_SEND_JOB_SECONDS` "
        f"{DEFAULTS['SWEEP_SEND_JOB_SECONDS'].default:g}); all `LOG_LEVEL={options.log_level}`, "
        f"JSON logs to files. The API and the workers use Redis database {BENCH_REDIS_DB}, "
        "emptied before each case; PostgreSQL and Redis on loopback.",
        "- **Members/s**: the run's members over `completed_at - created_at` of its row (the "
        "run created by `POST /api/v1/eligibility/sweeps/runs`, the counts read back from "
        "the member rows by `GET .../runs/{id}`). *Start* is created → RUNNING (the job "
        "picked up), *roster ms* the worker's own `sweep.roster_written` duration, "
        "*sending* the rate from `roster_at` to COMPLETED. *Members per worker* come from each worker's `sweep_members_total`; "
        "*lanes per worker* count the `sweep.send` lane windows each worker ran (its log), in "
        "the first window (every lane once) and in all; *load average* is the machine's at "
        "the case's start.",
        "- **Baselines**: *raw round trip*: pre-built 270s posted straight to the sandbox by "
        "`bench.check_throughput`'s load driver (own process, closed loop) with "
        f"{options.member_concurrency} in flight (what a sweep may have), "
        f"{options.raw_seconds:g} s per latency: the partner's ceiling at that "
        f"concurrency. *Serial fan-out*: the product document's design, "
        f"`SWEEP_MEMBER_CONCURRENCY=1`, {options.serial_members} members at "
        f"{options.serial_latency} ms, one worker.",
        "- **CPU** from `/proc` between the run's creation and its completion being seen: "
        "each worker, the sandbox, sweeps-api, the PostgreSQL backends serving the case's "
        "tenant database (by process title), this process (polling), and everything else "
        "the machine ran meanwhile (all cores busy minus those: Redis, PostgreSQL's "
        "background processes, other work on the machine). *Busiest worker, second by "
        f"second*: each {SAMPLE_SECONDS:g} s the busiest worker's share of a core, averaged "
        "(with two workers, what one ran at while the other idled).",
        f"- Whole run: {info['seconds']:.0f} s.",
        "",
    ]
    for result in results:
        case = result["case"]
        lines.append(
            f"**{result_label(case)}: {result['rate']:,.1f} members/s** "
            f"({result['counts']['total']:,} members in {result['seconds']:.1f} s).  "
        )
    lines += [
        "",
        "| case | members | received | failed | status | seconds | members/s | per worker | "
        "vs raw round trip | vs serial | start s | roster ms | sending members/s | "
        "peak RSS MiB | members per worker | lanes per worker, first window (all) | "
        "load average |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
        "---: | --- | --- | --- | --- |",
    ]
    for result in results:
        case, counts = result["case"], result["counts"]
        partner = ceiling_rate(case, raws)
        vs_raw = f"{result['rate'] / partner:.1%}" if partner and not case["serial"] else "-"
        vs_serial = (
            f"{result['rate'] / serial['rate']:.1f}x"
            if serial
            and serial["rate"]
            and not case["serial"]
            and case["latency_ms"] == serial["case"]["latency_ms"]
            else "-"
        )
        rss = " / ".join(f"{kib / 1024:.0f}" for kib in result["peak_rss_kib"])
        idle = " / ".join(f"{kib / 1024:.0f}" for kib in result["idle_rss_kib"])
        share = " / ".join(f"{n:,.0f}" for n in result["settled_by_worker"])
        lanes = " / ".join(str(n) for n in result["first_window_lanes_by_worker"])
        windows = " / ".join(str(n) for n in result["lane_windows_by_worker"])
        roster = f"{result['roster_ms']:,.0f}" if result["roster_ms"] is not None else "-"
        lines.append(
            f"| {result_label(case)} | {counts['total']:,} | {counts['received']:,} | "
            f"{counts['failed']:,} | {result['status']} | {result['seconds']:.1f} | "
            f"{result['rate']:,.1f} | {result['rate'] / case['workers']:,.1f} | {vs_raw} | "
            f"{vs_serial} | {result['to_start']:.2f} | {roster} | "
            f"{result['sending_rate']:,.1f} | {rss} (idle {idle}) | {share} | "
            f"{lanes} ({windows}) | {result['load_average']} |"
        )
    lines += [
        "",
        "CPU milliseconds per member (and each one's share of one core over the case):",
        "",
        "| case | worker(s) | busiest worker, second by second | sandbox | sweeps-api | "
        "PostgreSQL | this process | everything else | machine busy |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        case, cpu, wall = result["case"], result["cpu_seconds"], result["wall"]
        n = result["counts"]["total"]
        known = ("workers", "sandbox", "api", "postgres", "driver")
        other = cpu["machine"] - sum(cpu[k] for k in known)

        def cell(seconds: float, n: int = n, wall: float = wall) -> str:
            return f"{_ms(seconds, n)} ({seconds / wall:.0%})"

        workers = " + ".join(cell(cpu[f"worker{i}"]) for i in range(1, case["workers"] + 1))
        lines.append(
            f"| {result_label(case)} | {workers} | {result['busiest_worker_share']:.0%} | "
            f"{cell(cpu['sandbox'])} | {cell(cpu['api'])} | "
            f"{cell(cpu['postgres'])} | {cell(cpu['driver'])} | {cell(other)} | "
            f"{_ms(cpu['machine'], n)} ({cpu['machine'] / (wall * cores):.0%} of {cores} "
            "cores) |"
        )
    lines += [
        "",
        f"Raw round trip to the sandbox's `{PATHS[options.transport]}` at "
        f"{options.member_concurrency} in flight (the baseline):",
        "",
        "| latency | answers/s | failed | p50 ms | p99 ms | sandbox CPU ms/answer | "
        "driver CPU ms/answer | machine busy |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for ms_key, raw in raws.items():
        cpu, n, lat = raw["cpu_seconds"], raw["answers"], raw["latency_ms"]
        failed = raw["non_2xx"] + raw["unexpected"] + raw["errors"]
        lines.append(
            f"| {ms_key} ms | {raw['rate']:,.1f} | {failed} | {lat.get('p50', 0):.1f} | "
            f"{lat.get('p99', 0):.1f} | {_ms(cpu['sandbox'], n)} | {_ms(cpu['driver'], n)} | "
            f"{cpu['machine'] / (raw['seconds'] * cores):.0%} |"
        )
    lines += ["", "## Targets", ""]
    for latency, target, count in (
        (200, TARGET_PER_WORKER_AT_200, None),
        (0, TARGET_TWO_WORKERS_AT_0, 2),
    ):
        for result in results:
            case = result["case"]
            if case["serial"] or case["latency_ms"] != latency:
                continue
            if count is None:
                value = result["rate"] / case["workers"]
                lines.append(
                    f"- {result_label(case)}: {value:,.1f} members/s per worker process "
                    f"(≥ {target:g}): {_verdict(value, target)}."
                )
            elif case["workers"] == count:
                lines.append(
                    f"- {result_label(case)}: {result['rate']:,.1f} members/s "
                    f"(≥ {target:g}): {_verdict(result['rate'], target)}."
                )
    lines += ["", "## What bounds each figure", ""]
    for result in results:
        case, cpu = result["case"], result["cpu_seconds"]
        n = result["counts"]["total"]
        ms = case["latency_ms"]
        own = sum(cpu[k] for k in ("workers", "sandbox", "api", "postgres"))
        text = (
            f"- {result_label(case)}: "
            f"{bound(result, ceiling_rate(case, raws), in_flight(result, raws), cores)}. "
            f"Worker CPU {_ms(cpu['workers'], n)} ms/member, sandbox {_ms(cpu['sandbox'], n)}, "
            f"PostgreSQL {_ms(cpu['postgres'], n)}, sweeps-api {_ms(cpu['api'], n)}: "
            f"{_ms(own, n)} ms/member of the sweep's own processes, {_ms(cpu['machine'], n)} "
            f"of all cores; {cores} cores at that cost allow at most "
            f"{cores * n / own if own else 0:,.0f} members/s (the sweep alone) or "
            f"{cores * n / cpu['machine'] if cpu['machine'] else 0:,.0f} (with everything "
            "else the machine ran)"
        )
        flying = in_flight(result, raws)
        if ms and flying is not None:
            text += (
                f"; {case['member_concurrency']} in flight / {ms} ms allow at most "
                f"{case['member_concurrency'] * 1000 / ms:,.0f}/s, and about {flying:.1f} "
                "were in flight on average"
            )
        lines.append(text + ".")
    lines += [
        "",
        f"The reading: CPU-bound when all cores are ≥ {BUSY_MACHINE:.0%} busy or one "
        f"process uses ≥ {BUSY_PROCESS:.0%} of a core (each process runs its Python on one "
        f"core); else limit-bound when at least {FULL_LIMIT:.0%} of the members "
        "`SWEEP_MEMBER_CONCURRENCY` allows are in flight on average (the rate times the "
        "raw round trip's mean at that latency; for the serial fan-out the latency); else "
        f"latency-bound when the sweep reaches ≥ {NEAR_CEILING:.0%} of the partner's ceiling "
        "(the raw round trip rate at the same concurrency; for the serial fan-out one member "
        "per latency). With fewer cores than processes (workers, sandbox, "
        "PostgreSQL, Redis) the 0 ms cases measure how they share the cores: the CPU per "
        "member says where the time goes. *Everything else* holds work of other users of the "
        "machine too: read a case with a large share there as disturbed.",
    ]
    return "\n".join(lines) + "\n"


def result_label(case: dict[str, Any]) -> str:
    return Case(**case).label


# ---------------------------------------------------------------- the run


async def run(report_dir: Path, options: Options | None = None) -> str:
    """Run the benchmark; write its report (markdown and JSON) to ``report_dir``."""
    options = options or Options()
    clock = time.perf_counter()
    cases = cases_of(options)
    visit = date.today() + timedelta(days=3)
    async with workspace(report_dir, "sweep-throughput", log_level=options.log_level) as ws:
        redis_url = bench_redis_url(ws.redis_url)
        await empty_redis(redis_url)
        log(f"{len(cases)} tenants into {ws.database} ...")
        tenants = await create_tenants(
            ws.master_url, [(f"sweep-{case.key}", case.label) for case in cases]
        )
        datasets: dict[str, Dataset] = {}
        for case, tenant in zip(cases, tenants, strict=True):
            datasets[case.key] = await load(tenant, case.members, options.transport, visit)
        log("members loaded; starting the sandbox and sweeps-api ...")
        sandbox = ws.serve(
            "clearinghouse-sandbox",
            "clearinghouse_sandbox.app",
            "SANDBOX",
            {"SANDBOX_LATENCY_MS": "0", "SANDBOX_RECORD_LIMIT": "10000"},
        )
        api = ws.serve(
            "sweeps-api",
            "eligibility_sweeps.app",
            "SWEEPS_API",
            {"REDIS_URL": redis_url},
            database=True,
        )
        await ws.wait_until_up(sandbox, "/sandbox/config")
        await ws.wait_until_up(api)
        for case in cases:
            data = datasets[case.key]
            admin = ws.token(data.tenant.tenant_id, "config.update", ttl_seconds=600)
            await add_partner(api.url, sandbox.url, data, options.transport, admin)
        raws: dict[str, dict[str, Any]] = {}
        results: list[dict[str, Any]] = []
        # In the order of cases_of: each latency's raw baseline just before its cases.
        for case in cases:
            if not case.serial and str(case.latency_ms) not in raws:
                log(f"raw round trip at {case.latency_ms} ms, {case.member_concurrency} in flight")
                raws[str(case.latency_ms)] = await raw_baseline(ws, sandbox, case, options)
            log(f"{case.label}, {case.members:,} members ...")
            data = datasets[case.key]
            results.append(await run_case(ws, case, data, api, sandbox, redis_url, options))
        info: dict[str, Any] = {
            "started": ws.started_label,
            "machine": machine(),
            "software": software(await postgres_settings(ws.server_url, *PG_SETTINGS)),
            "load_average": ws.load_average,
            "visit": visit.isoformat(),
            "seconds": time.perf_counter() - clock,
        }
        report = render(info, options, results, raws)
        await ws.write(
            report, {**info, "options": asdict(options), "results": results, "raw": raws}
        )
        await empty_redis(redis_url)
        return report


def ints(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in text.split(","))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.sweep_throughput", description=__doc__)
    parser.add_argument("--members", type=int, default=Options.members, help="per case")
    parser.add_argument(
        "--latencies", type=ints, default=Options.latencies, help="ms per 270 (0,200)"
    )
    parser.add_argument(
        "--workers", type=ints, default=Options.workers, help="worker processes (1,2)"
    )
    parser.add_argument(
        "--serial-members", type=int, default=Options.serial_members, help="0: no serial run"
    )
    parser.add_argument("--serial-latency", type=int, default=Options.serial_latency)
    parser.add_argument(
        "--member-concurrency",
        type=int,
        default=Options.member_concurrency,
        help="SWEEP_MEMBER_CONCURRENCY of the workers (the production default)",
    )
    parser.add_argument("--transport", choices=tuple(PATHS), default=Options.transport)
    parser.add_argument("--raw-seconds", type=float, default=Options.raw_seconds)
    parser.add_argument("--log-level", default=Options.log_level, help="LOG_LEVEL of servers")
    args = parser.parse_args(argv)
    if (
        args.members < 1
        or args.serial_members < 0
        or min(args.workers) < 1
        or min(args.latencies) < 0
        or args.member_concurrency < 1
        or args.raw_seconds <= 0
    ):
        parser.error("members >= 1, workers >= 1, latencies >= 0, member concurrency >= 1")
    options = Options(
        members=args.members,
        latencies=args.latencies,
        workers=args.workers,
        serial_members=args.serial_members,
        serial_latency=args.serial_latency,
        member_concurrency=args.member_concurrency,
        transport=args.transport,
        raw_seconds=args.raw_seconds,
        log_level=args.log_level,
    )
    print(asyncio.run(run(RESULTS, options)))


if __name__ == "__main__":
    main()
