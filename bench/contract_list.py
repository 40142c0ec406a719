"""Contract list through the gateway: ``GET /api/v1/admin/contracts?expiring_within_days=30``
with 10,000 contracts in the tenant. Target: p95 under 50 ms.

Real processes on loopback, started here: a private master database with one tenant
(dropped at the end) holding 10,000 contracts of 20 payers and 5 billing entities, their
``effective_to`` spread over two years (a few hundred within 30 days), some open-ended,
and 5,000 fee schedules (the list counts each row's schedules); ``contracts-api`` and the
gateway (uvicorn, one worker each). The Python load generator sends requests at a fixed
rate (open loop) to the list through the gateway, the banner (``/summary``) through the
gateway, and the list straight to contracts-api, the three taking turns in half-second
blocks so they share the machine's conditions.

``python -m bench.contract_list`` runs it alone; ``run(report_dir)`` returns the report's
markdown and writes it, with the raw figures, to ``report_dir``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import sqlalchemy as sa

from bench.gateway_overhead import software
from bench.support import (
    RESULTS,
    Workspace,
    bulk_load,
    create_tenants,
    log,
    machine,
    machine_line,
    postgres_version,
    run_loadgen,
    workspace,
)
from contract_registry.models import fee_schedule, payer_contract
from rcm_kit.clock import SystemClock, today_in
from rcm_reference.models import billing_entity, payer

CONTRACTS = 10_000
PAYERS = 20
BILLING_ENTITIES = 5
LIST = "/api/v1/admin/contracts?expiring_within_days=30&limit=50"
SUMMARY = "/api/v1/admin/contracts/summary"
TARGET_P95_MS = 50.0


@dataclass(frozen=True)
class Options:
    rate: float = 50.0  # requests/s
    seconds: float = 10.0  # measured per target: rate x seconds requests each
    block: float = 0.5
    log_level: str = "INFO"


@dataclass(frozen=True)
class Dataset:
    tenant_id: UUID
    today: date
    active: int
    expiring_30: int


async def prepare(master_url: str, seed: int = 20_261_122) -> Dataset:
    """The master database and one tenant with the contracts, inserted in bulk."""
    [tenant] = await create_tenants(master_url, [("bench", "Bench")])
    today = today_in(SystemClock(), tenant.timezone)
    rng = random.Random(seed)
    payers = [
        {"payer_id": uuid4(), "payer_code": f"P{n:04d}", "name": f"Payer {n:02d}"}
        for n in range(PAYERS)
    ]
    entities = [
        {"billing_entity_id": uuid4(), "billing_entity_code": f"BE{n}", "name": f"Entity {n}"}
        for n in range(BILLING_ENTITIES)
    ]
    contracts: list[dict[str, Any]] = []
    for n in range(CONTRACTS):
        end = None if rng.random() < 0.08 else today + timedelta(days=rng.randrange(-60, 670))
        status = rng.choices(("ACTIVE", "DRAFT", "TERMINATED", "EXPIRED"), (85, 5, 5, 5))[0]
        contracts.append(
            {
                "contract_id": uuid4(),
                "payer_id": rng.choice(payers)["payer_id"],
                "billing_entity_id": rng.choice(entities)["billing_entity_id"],
                "name": f"Services Agreement {n}",
                "contract_number": f"C-{n:06d}",
                "status": status,
                "effective_from": (end or today) - timedelta(days=730),
                "effective_to": end,
            }
        )
    schedules = [
        {
            "contract_id": contract["contract_id"],
            "name": "Professional Fee Schedule",
            "effective_from": contract["effective_from"],
        }
        for contract in contracts[::2]
    ]
    async with bulk_load(tenant.database_url, analyze=True) as conn:
        await conn.execute(sa.insert(payer), payers)
        await conn.execute(sa.insert(billing_entity), entities)
        for start in range(0, CONTRACTS, 2_000):
            await conn.execute(sa.insert(payer_contract), contracts[start : start + 2_000])
        await conn.execute(sa.insert(fee_schedule), schedules)
    active = [c for c in contracts if c["status"] == "ACTIVE"]
    return Dataset(
        tenant_id=tenant.tenant_id,
        today=today,
        active=sum(1 for c in active if c["effective_to"] is None or c["effective_to"] >= today),
        expiring_30=sum(
            1
            for c in active
            if c["effective_to"] is not None and 0 <= (c["effective_to"] - today).days <= 30
        ),
    )


async def start_processes(ws: Workspace) -> tuple[str, str]:
    """contracts-api and the gateway in front of it: their base URLs."""
    api = ws.contracts_api()
    await ws.wait_until_up(api)
    gateway = ws.gateway("gateway", api.url)
    await ws.wait_until_up(gateway)
    return api.url, gateway.url


async def check_answers(gateway: str, headers: dict[str, str], data: Dataset) -> dict[str, Any]:
    """The routes answer, and the banner agrees with the data and with the list."""
    async with httpx.AsyncClient(base_url=gateway, headers=headers, timeout=30) as client:
        summary = (await client.get(SUMMARY)).raise_for_status().json()
        listed, cursor = 0, None
        while True:
            params = {"expiring_within_days": 30, "limit": 500} | (
                {"cursor": cursor} if cursor else {}
            )
            page = (await client.get("/api/v1/admin/contracts", params=params)).raise_for_status()
            listed += len(page.json()["items"])
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        first = await client.get(LIST)
    expected = {"active": data.active, "expiring_30": data.expiring_30}
    found = {"active": summary["active"], "expiring_30": summary["expiring"]["30"]}
    if found != expected or listed != data.expiring_30:
        raise RuntimeError(f"banner {found}, list {listed}, expected {expected}")
    return {"summary": summary, "list_body_bytes": len(first.content)}


def render(info: dict[str, Any], options: Options, results: dict[str, Any], data: Dataset) -> str:
    m, s = info["machine"], info["software"]
    gateway_list = results["gateway_list"]["latency_ms"]
    verdict = "met" if gateway_list["p95"] < TARGET_P95_MS else "**missed**"
    lines = [
        f"# Contract list through the gateway, {info['started']}",
        "",
        machine_line(m),
        "- **Software**: Python {python}, uvicorn {uvicorn} (uvloop {uvloop}, httptools "
        "{httptools}), aiohttp {aiohttp}, FastAPI {fastapi}, PostgreSQL {postgresql}".format(**s),
        f"- **Data**: one tenant, {CONTRACTS:,} contracts ({data.active:,} reading ACTIVE) of "
        f"{PAYERS} payers and {BILLING_ENTITIES} billing entities, effective_to spread over two "
        f"years (8 % open-ended), {CONTRACTS // 2:,} fee schedules; {data.expiring_30} ACTIVE "
        "contracts expire within 30 days, which the banner and a walk of the list both "
        "confirmed before measuring.",
        f"- **Requests**: `GET {LIST}` ({info['list_body_bytes']:,} bytes: the first page of "
        f"50 joined rows) and `GET {SUMMARY}`, bearer token, contracts-api and gateway "
        f"uvicorn with one worker each, `LOG_LEVEL={options.log_level}`.",
        f"- **Load**: `python -m bench.loadgen rate`, open loop at {options.rate:g} requests/s, "
        f"the three targets taking turns in {options.block:g}-second blocks, "
        f"{options.seconds:g} s ({options.rate * options.seconds:,.0f} requests) measured per "
        f"target after two unmeasured rounds; load generator CPU {info['loadgen_cpu']:.0%} of "
        "a core.",
        "",
        f"**Target p95 < {TARGET_P95_MS:g} ms through the gateway: {verdict}** "
        f"(p50 {gateway_list['p50']:.1f} ms, p95 {gateway_list['p95']:.1f} ms).",
        "",
        "| target | requests | errors + non-2xx | p50 ms | p90 ms | p95 ms | p99 ms | max ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, label in (
        ("gateway_list", "list, 30-day window, via gateway"),
        ("gateway_summary", "summary (banner), via gateway"),
        ("direct_list", "list, 30-day window, contracts-api direct"),
    ):
        r = results[key]
        lat = r["latency_ms"]
        lines.append(
            f"| {label} | {r['requests']:,} | {r['errors'] + r['non_2xx']} | {lat['p50']:.2f} | "
            f"{lat['p90']:.2f} | {lat['p95']:.2f} | {lat['p99']:.2f} | {lat['max']:.2f} |"
        )
    lines += [
        "",
        "Latency runs from sending a request until its whole body is read. The list is a "
        "keyset page ordered by (effective_to, contract_id), served by the index on "
        "(status, effective_to) for the window filter, with the payer and billing entity "
        "joined and each row's fee schedules counted.",
    ]
    return "\n".join(lines) + "\n"


async def run(report_dir: Path, options: Options | None = None) -> str:
    """Run the benchmark; write its report (markdown and JSON) to ``report_dir``."""
    options = options or Options()
    async with workspace(report_dir, "contract-list", log_level=options.log_level) as ws:
        log(f"{CONTRACTS:,} contracts into {ws.database} ...")
        data = await prepare(ws.master_url)
        token = ws.token(data.tenant_id, "config.read")
        headers = {"Authorization": f"Bearer {token}"}
        direct, gateway = await start_processes(ws)
        checked = await check_answers(gateway, headers, data)
        urls = {
            "gateway_list": gateway + LIST,
            "gateway_summary": gateway + SUMMARY,
            "direct_list": direct + LIST,
        }
        log(
            f"{options.rate:g} requests/s, {len(urls)} targets taking turns, "
            f"{options.seconds:g} s each ..."
        )
        load, cpu = await asyncio.to_thread(
            run_loadgen,
            ["rate", "--rate", f"{options.rate:g}", "--seconds", f"{options.seconds:g}"]
            + ["--block", f"{options.block:g}", "-H", f"Authorization: Bearer {token}"]
            + [arg for url in urls.values() for arg in ("--url", url)],
        )
        results = {key: load["targets"][url] for key, url in urls.items()}
        info = {
            "started": ws.started_label,
            "machine": machine(),
            "software": software(await postgres_version(ws.server_url)),
            "loadgen_cpu": cpu,
            "list_body_bytes": checked["list_body_bytes"],
            "schedule_lateness_ms": load["schedule_lateness_ms"],
        }
        report = render(info, options, results, data)
        await ws.write(report, {**info, "options": asdict(options), "results": results})
        return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.contract_list", description=__doc__)
    parser.add_argument("--rate", type=float, default=Options.rate, help="requests/s")
    parser.add_argument("--seconds", type=float, default=Options.seconds, help="per target")
    parser.add_argument("--log-level", default=Options.log_level, help="LOG_LEVEL of servers")
    args = parser.parse_args(argv)
    options = Options(rate=args.rate, seconds=args.seconds, log_level=args.log_level)
    print(asyncio.run(run(RESULTS, options)))


if __name__ == "__main__":
    main()
