"""Check throughput: eligibility checks per second through one ``sweeps-api`` process.

Each check is ``POST /api/v1/eligibility/checks`` sent straight to sweeps-api (bearer
token with ``eligibility.update``, no gateway), run by
``eligibility_sweeps.check.pipeline.CheckPipeline``, the pipeline the sweep worker
reuses: plan the check (PostgreSQL), pass the partner's limits (Redis), build the 270
and store it with its control numbers, send it to the clearinghouse sandbox, parse the
271 and store the answer, then the route reads the check back and audits it.

Real processes on loopback, started here: a private master database with one tenant
(dropped at the end) holding two payers, a billing entity with an NPI and a tax id, and
``--members`` members with one policy each under subscriber ids ``BENCH000123`` (which
the sandbox answers ACTIVE), half with each payer; the sandbox
(``clearinghouse-sandbox``, ``SANDBOX_LATENCY_MS=0``) and ``sweeps-api`` (uvicorn, one
worker, production defaults). One payer is routed through a ``core-mime`` trading
partner (CAQH CORE MIME, the production default) at the sandbox's ``/core``, the other
through an ``x12-http`` partner at ``/x12``; neither has a rate limit or a daily cap,
so the limits cost only their Redis round trips.

Baseline in the same run: raw POSTs of pre-built 270s straight to the sandbox's
``/core`` and ``/x12``, the partner round trip alone. At each concurrency level (closed
loop: N requests in flight) the four targets take turns in short blocks after an
unmeasured warm-up, so they share the machine's conditions; each check's throughput is
also given as a ratio to the raw round trip of its transport.

Also measured, to say where the time goes: CPU seconds per request of sweeps-api, of
the sandbox, of the PostgreSQL backends serving the tenant database and of the load
driver (``/proc``), and the pure X12 cost of a check in-process (``bench.x12_codec``'s
timing on the sandbox's own 271).

``python -m bench.check_throughput`` runs it alone; ``run(report_dir)`` returns the
report's markdown and writes it, with the raw figures, to ``report_dir``.
``python -m bench.check_throughput drive SPEC`` is the load driver it starts as its own
process.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import aiohttp
import httpx
import sqlalchemy as sa

from bench.loadgen import percentiles
from bench.support import (
    REPO,
    RESULTS,
    Workspace,
    bulk_load,
    create_tenants,
    log,
    machine,
    machine_busy_seconds,
    machine_line,
    postgres_backends,
    postgres_settings,
    process_cpu_seconds,
    versions,
    workspace,
)
from bench.x12_codec import Operation
from bench.x12_codec import Options as CodecOptions
from bench.x12_codec import measure as measure_codec
from eligibility_sweeps.check.runtime import MAX_CONNECTIONS
from eligibility_sweeps.models import coverage_policy, member
from eligibility_sweeps.models.trading_partner import AuthType, Transport
from eligibility_sweeps.transport.base import PartnerEndpoint
from eligibility_sweeps.transport.core_mime import CoreMimeSender, parse_envelope
from eligibility_sweeps.x12.build270 import (
    Envelope,
    Inquiry,
    Payer,
    PersonName,
    Provider,
    Subscriber,
    build_270,
    trace_originator_from_ein,
)
from eligibility_sweeps.x12.read271 import CoverageStatus, parse_271_all
from rcm_kit.settings import CommonSettings
from rcm_reference.models import billing_entity, payer

CHECKS = "/api/v1/eligibility/checks"
PARTNERS = "/api/v1/admin/trading-partners"
NPI = "1234567893"
EIN = "98-7728123"
PROVIDER = "Bone and Joint Clinic"
SENDER, RECEIVER = "RCMSENDER", "SANDBOXCH"
TRANSPORTS = ("core-mime", "x12-http")
PATHS = {"core-mime": "/core", "x12-http": "/x12"}
PAYER_CODES = {"core-mime": "SBXCORE", "x12-http": "SBXX12"}
X12_CALLS = 300  # timed calls per X12 operation (the CORE envelope parse is slow)
RAW_270S = 200  # distinct pre-built 270s per baseline target, sent in turn
EXPECT_CHECK = b'"coverage_status":"ACTIVE"'
EXPECT_271 = b"EB*1*"
CORE_BOUNDARY = secrets.token_hex(16)  # like the one httpx picks per request
PG_SETTINGS = ("server_version", "synchronous_commit", "fsync", "shared_buffers")


@dataclass(frozen=True)
class Options:
    levels: tuple[int, ...] = (1, 8, 32)  # requests in flight
    seconds: float = 6.0  # measured per target and level
    block: float = 3.0  # the targets take turns in blocks of this many seconds
    warmup: float = 0.5  # unmeasured, per target and level
    members: int = 4_000
    log_level: str = "INFO"


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    kind: str  # "check" or "raw"


TARGETS = (
    Target("check_core", "check via sweeps-api, core-mime", "check"),
    Target("raw_core", "raw 270 to sandbox /core", "raw"),
    Target("check_x12", "check via sweeps-api, x12-http", "check"),
    Target("raw_x12", "raw 270 to sandbox /x12", "raw"),
)
BASELINE_OF = {"check_core": "raw_core", "check_x12": "raw_x12"}


@dataclass(frozen=True)
class Dataset:
    tenant_id: UUID
    tenant_database: str
    payer_ids: dict[str, UUID]
    members: dict[str, list[tuple[UUID, str, str, str, date]]]
    """Per transport: (member_id, subscriber_id, first, last, birth date)."""


# ---------------------------------------------------------------- data


async def prepare(master_url: str, members: int) -> Dataset:
    """The master database and one tenant: two payers, a billing entity with an NPI
    and a tax id, and the members with one policy each, inserted in bulk."""
    [tenant] = await create_tenants(master_url, [("bench", "Bench")])
    payer_ids = {transport: uuid4() for transport in TRANSPORTS}
    people: dict[str, list[tuple[UUID, str, str, str, date]]] = {t: [] for t in TRANSPORTS}
    member_rows, policy_rows = [], []
    for n in range(members):
        transport = TRANSPORTS[n % 2]
        member_id, subscriber_id = uuid4(), f"BENCH{n:06d}"
        first, last = f"Ana{chr(65 + n % 26)}", f"Lee{chr(65 + n // 26 % 26)}"
        born = date(1950, 1, 1) + timedelta(days=n * 7 % 20_000)
        people[transport].append((member_id, subscriber_id, first, last, born))
        member_rows.append(
            {
                "member_id": member_id,
                "external_id": f"MRN{n:07d}",
                "first_name": first,
                "last_name": last,
                "date_of_birth": born,
                "gender": "FM"[n % 2],
            }
        )
        policy_rows.append(
            {
                "member_id": member_id,
                "payer_id": payer_ids[transport],
                "subscriber_id": subscriber_id,
                "effective_from": date(2025, 1, 1),
            }
        )
    async with bulk_load(tenant.database_url, analyze=True) as conn:
        await conn.execute(
            sa.insert(payer),
            [
                {"payer_id": payer_ids[t], "payer_code": PAYER_CODES[t], "name": f"Plan {t}"}
                for t in TRANSPORTS
            ],
        )
        await conn.execute(
            sa.insert(billing_entity).values(
                billing_entity_code="BE1", name=PROVIDER, npi=NPI, tax_id=EIN
            )
        )
        for start in range(0, members, 2_000):
            await conn.execute(sa.insert(member), member_rows[start : start + 2_000])
            await conn.execute(sa.insert(coverage_policy), policy_rows[start : start + 2_000])
    return Dataset(
        tenant_id=tenant.tenant_id,
        tenant_database=tenant.database_name,
        payer_ids=payer_ids,
        members=people,
    )


# ---------------------------------------------------------------- processes


@dataclass(frozen=True)
class Servers:
    sandbox: str
    api: str
    sandbox_pid: int
    api_pid: int


async def start_servers(ws: Workspace) -> Servers:
    sandbox = ws.serve(
        "clearinghouse-sandbox",
        "clearinghouse_sandbox.app",
        "SANDBOX",
        {"SANDBOX_LATENCY_MS": "0", "SANDBOX_RECORD_LIMIT": "10000"},
    )
    api = ws.serve("sweeps-api", "eligibility_sweeps.app", "SWEEPS_API", database=True)
    await ws.wait_until_up(sandbox, "/sandbox/config")
    await ws.wait_until_up(api)
    return Servers(sandbox.url, api.url, sandbox.proc.pid, api.proc.pid)


async def add_partners(servers: Servers, data: Dataset, token: str) -> dict[str, Any]:
    """One partner per transport, each routing its own payer, with no limits."""
    partners: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=servers.api, timeout=30) as client:
        for transport in TRANSPORTS:
            response = await client.post(
                PARTNERS,
                headers={"Authorization": f"Bearer {token}"},
                json={
                    "name": f"Sandbox {transport}",
                    "transport": transport,
                    "endpoint_url": servers.sandbox + PATHS[transport],
                    "auth": {"type": "none"},
                    "sender_id": SENDER,
                    "receiver_id": RECEIVER,
                    "usage_indicator": "T",
                    "payer_ids": [str(data.payer_ids[transport])],
                },
            )
            if response.status_code != 201:
                raise RuntimeError(f"partner {transport}: {response.status_code} {response.text}")
            partner = response.json()
            if partner["max_requests_per_second"] is not None or partner["payer_limits"]:
                raise RuntimeError(f"partner {transport} has rate limits: {partner}")
            partners[transport] = partner
    return partners


# ---------------------------------------------------------------- requests


def inquiry_for(person: tuple[UUID, str, str, str, date], transport: str, day: date) -> Inquiry:
    _, subscriber_id, first, last, born = person
    return Inquiry(
        payer=Payer(code=PAYER_CODES[transport], name=f"Plan {transport}"),
        provider=Provider(npi=NPI, name=PROVIDER),
        subscriber=Subscriber(
            member_id=subscriber_id, name=PersonName(last=last, first=first), birth_date=born
        ),
        service_date=day,
        trace_number=uuid4().hex.upper(),
        trace_originator=trace_originator_from_ein(EIN),
    )


def envelope_for(number: int) -> Envelope:
    return Envelope(
        sender_id=SENDER,
        receiver_id=RECEIVER,
        interchange_control_number=number,
        group_control_number=number,
        transaction_control_number=number,
        timestamp=datetime.now(UTC),
        usage_indicator="T",
    )


def core_endpoint(sandbox: str) -> PartnerEndpoint:
    return PartnerEndpoint(
        trading_partner_id=uuid4(),
        name="Sandbox core-mime",
        transport=Transport.CORE_MIME,
        endpoint_url=sandbox + PATHS["core-mime"],
        auth_type=AuthType.NONE,
        username=None,
        secret=None,
        sender_id=SENDER,
        receiver_id=RECEIVER,
        timeout_seconds=20,
    )


def core_request(sandbox: str, x12: str, client: httpx.AsyncClient) -> tuple[bytes, str]:
    """The body and content type of a CORE request, encoded exactly as the core-mime
    sender encodes it (httpx multipart with the product's envelope fields)."""
    fields = CoreMimeSender(client).envelope(core_endpoint(sandbox), x12, payload_id=str(uuid4()))
    # One boundary for every pre-built body, so they can share one Content-Type header.
    request = client.build_request(
        "POST",
        sandbox + PATHS["core-mime"],
        data=fields,
        files={"Payload": (None, x12.encode())},
        headers={"Content-Type": f"multipart/form-data; boundary={CORE_BOUNDARY}"},
    )
    return request.read(), request.headers["content-type"]


def driver_targets(
    servers: Servers, data: Dataset, token: str, day: date, client: httpx.AsyncClient
) -> dict[str, dict[str, Any]]:
    """What the driver sends: every member of a payer once per turn for the checks,
    a cycle of distinct pre-built 270s for the raw round trips."""
    specs: dict[str, dict[str, Any]] = {}
    for transport, check_key, raw_key in (
        ("core-mime", "check_core", "raw_core"),
        ("x12-http", "check_x12", "raw_x12"),
    ):
        people = data.members[transport]
        specs[check_key] = {
            "url": servers.api + CHECKS,
            "headers": {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            "bodies": [
                json.dumps({"member_id": str(p[0]), "service_date": day.isoformat()})
                for p in people
            ],
            "expect": EXPECT_CHECK.decode(),
        }
        bodies, content_type = [], "application/edi-x12"
        for n, person in enumerate(people[:RAW_270S]):
            x12 = build_270(envelope_for(900_000 + n), inquiry_for(person, transport, day))
            if transport == "core-mime":
                raw, content_type = core_request(servers.sandbox, x12, client)
                bodies.append(raw.decode("latin-1"))
            else:
                bodies.append(x12)
        specs[raw_key] = {
            "url": servers.sandbox + PATHS[transport],
            "headers": {"Content-Type": content_type},
            "bodies": bodies,
            "expect": EXPECT_271.decode(),
        }
    return specs


async def verify(
    servers: Servers, data: Dataset, token: str, day: date, partners: dict[str, Any]
) -> dict[str, Any]:
    """Before measuring: a check through each partner comes back RECEIVED and ACTIVE
    from the right partner, and the sandbox answers each raw 270 with a 271. Returns
    the sandbox's answers (X12 and CORE envelope) for the in-process X12 timing."""
    samples: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=30) as client:
        for transport in TRANSPORTS:
            person = data.members[transport][-1]
            response = await client.post(
                servers.api + CHECKS,
                headers={"Authorization": f"Bearer {token}"},
                json={"member_id": str(person[0]), "service_date": day.isoformat()},
            )
            check = response.json()
            if (
                response.status_code != 201
                or check["status"] != "RECEIVED"
                or check["coverage_status"] != "ACTIVE"
                or check["trading_partner_id"] != partners[transport]["trading_partner_id"]
            ):
                raise RuntimeError(f"check via {transport}: {response.status_code} {check}")
        person = data.members["x12-http"][0]
        x12 = build_270(envelope_for(1), inquiry_for(person, "x12-http", day))
        answer = await client.post(
            servers.sandbox + "/x12",
            content=x12.encode(),
            headers={"Content-Type": "application/edi-x12"},
        )
        answer.raise_for_status()
        parsed = parse_271_all(answer.text, service_date=day)
        if parsed[0].coverage_status is not CoverageStatus.ACTIVE:
            raise RuntimeError(f"sandbox 271: {parsed[0].coverage_status}")
        person = data.members["core-mime"][0]
        x12 = build_270(envelope_for(2), inquiry_for(person, "core-mime", day))
        body, content_type = core_request(servers.sandbox, x12, client)
        core = await client.post(
            servers.sandbox + "/core", content=body, headers={"Content-Type": content_type}
        )
        core.raise_for_status()
        fields = parse_envelope(core.content, core.headers["content-type"])
        if fields.get("ErrorCode") != "Success" or EXPECT_271.decode() not in fields["Payload"]:
            raise RuntimeError(f"sandbox /core: {fields.get('ErrorCode')}")
    samples |= {
        "270": x12,
        "271": answer.text,
        "core_answer": core.content,
        "core_content_type": core.headers["content-type"],
    }
    return samples


# ---------------------------------------------------------------- driver (own process)


@dataclass
class Probe:
    """CPU counters read at the edges of every measured block."""

    pids: dict[str, int]
    database: str

    def read(self) -> tuple[dict[str, float], dict[int, float]]:
        counters = {name: process_cpu_seconds(pid) for name, pid in self.pids.items()}
        counters["driver"] = time.process_time()
        counters["machine"] = machine_busy_seconds()
        return counters, postgres_backends(self.database)

    @staticmethod
    def spent(
        before: tuple[dict[str, float], dict[int, float]],
        after: tuple[dict[str, float], dict[int, float]],
    ) -> dict[str, float]:
        spent = {name: after[0][name] - before[0][name] for name in after[0]}
        # A backend that started within the block counts from zero.
        spent["postgres"] = sum(cpu - before[1].get(pid, 0.0) for pid, cpu in after[1].items())
        return spent


@dataclass
class Tally:
    ok: int = 0
    non_2xx: int = 0
    unexpected: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)

    def add(self, other: Tally) -> None:
        self.ok += other.ok
        self.non_2xx += other.non_2xx
        self.unexpected += other.unexpected
        self.errors += other.errors
        self.seconds += other.seconds
        self.latencies += other.latencies
        for name, value in other.cpu.items():
            self.cpu[name] = self.cpu.get(name, 0.0) + value

    def summary(self) -> dict[str, Any]:
        done = len(self.latencies)
        return {
            "requests": self.ok,
            "answers": done,
            "non_2xx": self.non_2xx,
            "unexpected": self.unexpected,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "rate": self.ok / self.seconds if self.seconds else 0.0,
            "latency_ms": percentiles(self.latencies)
            | {"mean": round(sum(self.latencies) / done * 1000, 3) if done else 0.0},
            "cpu_seconds": {name: round(value, 3) for name, value in self.cpu.items()},
        }


async def _block(
    session: aiohttp.ClientSession,
    spec: dict[str, Any],
    bodies: Iterator[bytes],
    in_flight: int,
    seconds: float,
) -> Tally:
    """``in_flight`` workers, each sending its next request when the last returned,
    until ``seconds`` have passed; the block ends when the last answer is in."""
    tally = Tally()
    url, headers, expect = spec["url"], spec["headers"], spec["expect"].encode()
    started = time.perf_counter()
    deadline = started + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            body = next(bodies)
            sent = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    content = await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                tally.errors += 1
                continue
            tally.latencies.append(time.perf_counter() - sent)
            if status >= 300:
                tally.non_2xx += 1
            elif expect not in content:
                tally.unexpected += 1
            else:
                tally.ok += 1

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    tally.seconds = time.perf_counter() - started
    return tally


async def drive(spec: dict[str, Any]) -> dict[str, Any]:
    """Every level in turn: an unmeasured warm-up block per target, then measured
    blocks, the targets taking turns (the order rotating every round)."""
    keys: list[str] = list(spec["targets"])
    bodies = {
        key: itertools.cycle([body.encode("latin-1") for body in target["bodies"]])
        for key, target in spec["targets"].items()
    }
    probe = Probe(spec["pids"], spec["database"])
    rounds = max(1, round(spec["seconds"] / spec["block"]))
    block = spec["seconds"] / rounds
    results: dict[str, dict[str, Any]] = {}
    connector = aiohttp.TCPConnector(limit=max(spec["levels"]), keepalive_timeout=30)
    async with aiohttp.ClientSession(
        connector=connector,
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
        timeout=aiohttp.ClientTimeout(total=60),
    ) as session:
        for level in spec["levels"]:
            for key in keys:
                await _block(session, spec["targets"][key], bodies[key], level, spec["warmup"])
            tallies = {key: Tally() for key in keys}
            for n in range(rounds):
                for key in keys[n % len(keys) :] + keys[: n % len(keys)]:
                    before = probe.read()
                    tally = await _block(session, spec["targets"][key], bodies[key], level, block)
                    tally.cpu = Probe.spent(before, probe.read())
                    tallies[key].add(tally)
            results[str(level)] = {key: tally.summary() for key, tally in tallies.items()}
            log(f"{level} in flight done")
    return results


def drive_main(spec_path: str) -> None:
    import uvloop  # comes with uvicorn[standard]

    spec = json.loads(Path(spec_path).read_text())
    print(json.dumps(uvloop.run(drive(spec))))


def run_driver(spec_path: Path) -> tuple[dict[str, Any], float]:
    """The driver as its own process (its CPU then competes with the servers' as a
    client's would); its result and wall time."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "bench.check_throughput", "drive", str(spec_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"load driver exited with {out.returncode}:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result, time.perf_counter() - started


# ---------------------------------------------------------------- X12 in-process


def x12_operations(samples: dict[str, Any], day: date) -> list[Operation]:
    text_270, text_271 = samples["270"], samples["271"]
    core_answer, core_type = samples["core_answer"], samples["core_content_type"]
    person = (uuid4(), "BENCH000001", "AnaB", "LeeA", date(1960, 1, 1))
    inquiry, envelope = inquiry_for(person, "x12-http", day), envelope_for(7)

    def check_x12() -> object:
        # What the pipeline does per check: a trial build in the plan, the real build
        # with the control numbers, and the parse of the answer.
        build_270(envelope, inquiry)
        build_270(envelope, inquiry)
        return parse_271_all(text_271, service_date=day)

    return [
        Operation("build", "`build_270` (one build)", lambda: build_270(envelope, inquiry)),
        Operation(
            "parse",
            "`parse_271_all`, the sandbox's 271",
            lambda: parse_271_all(text_271, service_date=day),
        ),
        Operation(
            "core_envelope",
            "`parse_envelope`, the sandbox's CORE answer (core-mime only)",
            lambda: parse_envelope(core_answer, core_type),
        ),
        Operation("check", "**a check's X12: 2 x `build_270` + `parse_271_all`**", check_x12),
        Operation("split", "baseline: `str.split` of the 270", lambda: text_270.split("~")),
    ]


# ---------------------------------------------------------------- report


def software(pg: dict[str, str]) -> dict[str, str]:
    names = ("uvicorn", "uvloop", "httptools", "fastapi", "sqlalchemy", "asyncpg", "httpx")
    return versions(*names, "aiohttp") | pg


def _ms(seconds: float, count: int) -> str:
    return f"{seconds / count * 1000:,.2f}" if count else "-"


def render(
    info: dict[str, Any],
    options: Options,
    results: dict[str, dict[str, Any]],
    codec: dict[str, dict[str, float]],
) -> str:
    m, s = info["machine"], info["software"]
    first = str(options.levels[0])
    lines = [
        f"# Eligibility checks through one sweeps-api, {info['started']}",
        "",
        machine_line(m, info["load_average"]),
        f"- **Software**: Python {s['python']}, uvicorn {s['uvicorn']} (uvloop {s['uvloop']}, "
        f"httptools {s['httptools']}), FastAPI {s['fastapi']}, SQLAlchemy {s['sqlalchemy']}, "
        f"asyncpg {s['asyncpg']}, httpx {s['httpx']}; PostgreSQL {s['server_version']} "
        f"(fsync {s['fsync']}, synchronous_commit {s['synchronous_commit']}, shared_buffers "
        f"{s['shared_buffers']}); load driver aiohttp {s['aiohttp']} on uvloop",
        f"- **Data**: one tenant, {options.members:,} members with one policy each "
        f"(subscriber ids `BENCH000000`..., which the sandbox answers ACTIVE), half with a "
        "payer routed through a `core-mime` partner at the sandbox's `/core`, half with one "
        "through an `x12-http` partner at `/x12`; auth none, no `max_requests_per_second`, "
        "no payer limits or daily caps. A billing entity with NPI 1234567893 and tax id "
        "98-7728123 is the 2100B provider and TRN03.",
        "- **Processes**: `sweeps-api` (uvicorn, one worker, production defaults: "
        f"`TENANT_POOL_SIZE={CommonSettings.model_fields['TENANT_POOL_SIZE'].default}` "
        f"connections to the tenant database, partner HTTP pool of {MAX_CONNECTIONS}) and "
        "`clearinghouse-sandbox` (`SANDBOX_LATENCY_MS=0`), "
        f"both `LOG_LEVEL={options.log_level}`, JSON logs to files; PostgreSQL and Redis "
        "on loopback.",
        "- **Requests**: a check is `POST /api/v1/eligibility/checks` "
        "(`{member_id, service_date}`, bearer token with `eligibility.update`) straight to "
        "sweeps-api, each member in turn; it counts when the answer is 201 with "
        '`"coverage_status":"ACTIVE"` (the check was RECEIVED and parsed). The baseline '
        f"posts one of {RAW_270S} pre-built 270s straight to the sandbox (`/core`: the "
        "same httpx multipart envelope the core-mime sender writes; `/x12`: the raw 270) "
        "and counts a 200 holding `EB*1*`: the partner round trip alone.",
        f"- **Load**: closed loop, {', '.join(str(n) for n in options.levels)} requests in "
        f"flight; at each level a {options.warmup:g} s unmeasured warm-up per target, then "
        f"{options.seconds:g} s measured per target, the four targets taking turns in "
        f"blocks of about {options.block:g} s. A block stops sending at its end and ends "
        "when its last answer is in; rates are answers over block time. The driver is its "
        f"own process. The whole run took {info['seconds']:.0f} s.",
        "- **CPU** per answer from `/proc`, over each target's blocks: sweeps-api, the "
        "sandbox, the PostgreSQL backends serving the tenant database (found by process "
        "title), the driver, and everything else the machine ran meanwhile (all cores busy "
        "minus those four: Redis, PostgreSQL's own background processes, and any other "
        "work on the machine).",
        "",
    ]
    for key, label in (("check_core", "core-mime"), ("check_x12", "x12-http")):
        rates = ", ".join(
            f"{results[str(n)][key]['rate']:,.0f}/s at {n} "
            f"({results[str(n)][key]['rate'] / results[str(n)][BASELINE_OF[key]]['rate']:.1%}"
            " of the raw round trip)"
            for n in options.levels
        )
        lines.append(f"**Checks through sweeps-api, {label}: {rates}.**  ")
    lines += [
        "",
        "| in flight | target | answers | failed | per s | vs raw | p50 ms | p95 ms | "
        "p99 ms | max ms |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for level in options.levels:
        for target in TARGETS:
            r = results[str(level)][target.key]
            lat = r["latency_ms"]
            base = BASELINE_OF.get(target.key)
            ratio = f"{r['rate'] / results[str(level)][base]['rate']:.1%}" if base else "-"
            failed = r["non_2xx"] + r["unexpected"] + r["errors"]
            lines.append(
                f"| {level} | {target.label} | {r['requests']:,} | {failed} | "
                f"{r['rate']:,.1f} | {ratio} | {lat.get('p50', 0):.2f} | "
                f"{lat.get('p95', 0):.2f} | {lat.get('p99', 0):.2f} | {lat.get('max', 0):.2f} |"
            )
    lines += [
        "",
        "CPU milliseconds per answer (and each process's share of one core over the "
        "target's blocks):",
        "",
        "| in flight | target | sweeps-api | sandbox | PostgreSQL | driver | everything else |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for level in options.levels:
        for target in TARGETS:
            r = results[str(level)][target.key]
            cpu, n, wall = dict(r["cpu_seconds"]), r["answers"], r["seconds"]
            cpu["other"] = cpu["machine"] - sum(
                cpu[k] for k in ("api", "sandbox", "postgres", "driver")
            )

            def cell(name: str, cpu: dict[str, float] = cpu, n: int = n, wall: float = wall) -> str:
                return f"{_ms(cpu[name], n)} ({cpu[name] / wall:.0%})" if wall else "-"

            api = cell("api") if target.kind == "check" else "-"
            pg = cell("postgres") if target.kind == "check" else "-"
            lines.append(
                f"| {level} | {target.label} | {api} | {cell('sandbox')} | {pg} | "
                f"{cell('driver')} | {cell('other')} |"
            )
    check = codec["check"]
    lines += [
        "",
        f"Where a check's time goes at {first} in flight (means, ms; the remainder is "
        "what the check waited for that is neither sweeps-api's own CPU nor the partner: "
        "PostgreSQL and Redis round trips, commits, pool hand-overs):",
        "",
        "| transport | check latency | sweeps-api CPU | of which X12 | partner round trip "
        "(raw) | remainder | PostgreSQL CPU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, label in (("check_core", "core-mime"), ("check_x12", "x12-http")):
        r, raw = results[first][key], results[first][BASELINE_OF[key]]
        latency, partner = r["latency_ms"]["mean"], raw["latency_ms"]["mean"]
        api_ms = r["cpu_seconds"]["api"] / r["answers"] * 1000 if r["answers"] else 0.0
        x12 = check["mean_us"] / 1000 + (
            codec["core_envelope"]["mean_us"] / 1000 if key == "check_core" else 0.0
        )
        pg_ms = r["cpu_seconds"]["postgres"] / r["answers"] * 1000 if r["answers"] else 0.0
        lines.append(
            f"| {label} | {latency:.2f} | {api_ms:.2f} | {x12:.2f} | {partner:.2f} | "
            f"{latency - api_ms - partner:.2f} | {pg_ms:.2f} |"
        )
    lines += [
        "",
        "The pure X12 cost, in this process (`bench.x12_codec`'s timing: one call at a "
        "time, garbage collector on), on the sandbox's own 271 "
        f"({len(info['sandbox_271']):,} bytes):",
        "",
        "| operation | calls/s | mean µs | p50 µs | p95 µs |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for op in info["x12_operations"]:
        c = codec[op["key"]]
        lines.append(
            f"| {op['label']} | {c['ops_per_s']:,.0f} | {c['mean_us']:,.1f} | "
            f"{c['p50_us']:,.1f} | {c['p95_us']:,.1f} |"
        )
    lines += [
        "",
        "The partner round trip (raw) is measured from the driver, so it includes the "
        "driver's client and the sandbox's work as well as loopback HTTP; inside a check "
        "the same exchange runs on sweeps-api's httpx client, whose CPU is in sweeps-api's "
        "column. The X12 column adds the CORE envelope parse for core-mime. On a machine "
        "with fewer cores than processes (sweeps-api, sandbox, PostgreSQL, Redis, driver) "
        "the higher levels measure how the processes share the cores: read them with the "
        "CPU table.",
    ]
    return "\n".join(lines) + "\n"


async def run(report_dir: Path, options: Options | None = None) -> str:
    """Run the benchmark; write its report (markdown and JSON) to ``report_dir``."""
    options = options or Options()
    clock = time.perf_counter()
    async with workspace(report_dir, "check-throughput", log_level=options.log_level) as ws:
        log(f"{options.members:,} members into {ws.database} ...")
        data = await prepare(ws.master_url, options.members)
        servers = await start_servers(ws)
        partners = await add_partners(
            servers, data, ws.token(data.tenant_id, "config.update", ttl_seconds=600)
        )
        token = ws.token(data.tenant_id, "eligibility.update")
        day = date.today() + timedelta(days=3)
        samples = await verify(servers, data, token, day, partners)
        ops = x12_operations(samples, day)
        codec, _ = await asyncio.to_thread(
            measure_codec, ops, CodecOptions(iterations=X12_CALLS, rounds=3, warmup=30)
        )
        async with httpx.AsyncClient() as client:
            spec = {
                "targets": driver_targets(servers, data, token, day, client),
                "levels": list(options.levels),
                "seconds": options.seconds,
                "block": options.block,
                "warmup": options.warmup,
                "pids": {"api": servers.api_pid, "sandbox": servers.sandbox_pid},
                "database": data.tenant_database,
            }
        spec_path = ws.log_dir / "driver-spec.json"
        await asyncio.to_thread(spec_path.write_text, json.dumps(spec))
        log(
            f"{len(TARGETS)} targets x {len(options.levels)} levels x "
            f"{options.warmup + options.seconds:g} s ..."
        )
        results, _ = await asyncio.to_thread(run_driver, spec_path)
        info: dict[str, Any] = {
            "started": ws.started_label,
            "machine": machine(),
            "software": software(await postgres_settings(ws.server_url, *PG_SETTINGS)),
            "load_average": ws.load_average,
            "sandbox_271": samples["271"],
            "x12_operations": [{"key": op.key, "label": op.label} for op in ops],
            "seconds": time.perf_counter() - clock,
        }
        report = render(info, options, results, codec)
        await ws.write(
            report, {**info, "options": asdict(options), "results": results, "x12": codec}
        )
        return report


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["drive"]:
        drive_main(argv[1])
        return
    parser = argparse.ArgumentParser(prog="python -m bench.check_throughput", description=__doc__)
    parser.add_argument(
        "--levels",
        type=lambda text: tuple(int(n) for n in text.split(",")),
        default=Options.levels,
        help="requests in flight, comma-separated (1,8,32)",
    )
    parser.add_argument("--seconds", type=float, default=Options.seconds, help="per target")
    parser.add_argument("--block", type=float, default=Options.block, help="seconds per turn")
    parser.add_argument("--warmup", type=float, default=Options.warmup, help="per target")
    parser.add_argument("--members", type=int, default=Options.members)
    parser.add_argument("--log-level", default=Options.log_level, help="LOG_LEVEL of servers")
    args = parser.parse_args(argv)
    if min(args.levels) < 1 or args.seconds <= 0 or args.members < 2 * RAW_270S:
        parser.error(f"levels >= 1, seconds > 0, members >= {2 * RAW_270S}")
    options = Options(
        levels=args.levels,
        seconds=args.seconds,
        block=args.block,
        warmup=args.warmup,
        members=args.members,
        log_level=args.log_level,
    )
    print(asyncio.run(run(RESULTS, options)))


if __name__ == "__main__":
    main()
