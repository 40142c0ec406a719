"""Gateway overhead: what the gateway adds to ``GET /api/v1/payers`` (about 1 KB of JSON).

Everything runs as real processes on loopback, started here: a private master database
with one tenant and a few payers (dropped at the end), ``contracts-api`` and the gateway
(uvicorn, one worker each), plus two minimal forwarders that differ only in their HTTP
client (aiohttp, httpx) to back the gateway's choice of client with a number. A second
pair repeats the comparison against a stub FastAPI service answering the same bytes with
no database behind it (the kind of endpoint the issue's reference figures measured), so
the proxy's own cost is not hidden behind the real service's.
Each target is measured with the same load generator in the same run:

(a) a fixed load well below saturation (100 requests/s, open loop, the targets taking
    turns in half-second blocks): latency p50/p99 direct and through each proxy, and
    the difference. Target: the gateway adds at most 1 ms at p50.
(b) saturation with 32 connections (wrk when installed, else a Python closed loop):
    throughput through each proxy as a share of direct. Target: at least 50 %.

The report also gives the load generator's own CPU share (its CPU time over its wall
time), since on a small machine it competes with the servers for the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import sqlalchemy as sa

from bench.support import (
    LOOPBACK,
    REPO,
    RESULTS,
    Workspace,
    bulk_load,
    children_cpu_seconds,
    create_tenants,
    free_port,
    log,
    machine,
    machine_line,
    postgres_version,
    process_cpu_seconds,
    run_loadgen,
    versions,
    workspace,
)

PATH = "/api/v1/payers"
WRK_INSTALL = "apt-get install -y wrk  (Debian/Ubuntu; brew install wrk on macOS)"
PAYERS = [
    ("60054", "Aetna"),
    ("87726", "UnitedHealthcare"),
    ("62308", "Cigna Healthcare"),
    ("61101", "Humana"),
    ("00710", "Blue Cross Blue Shield of Michigan"),
    ("SKCA0", "Anthem Blue Cross California"),
    ("CMSMA", "Medicare Part A and B"),
    ("MCDTX", "Texas Medicaid and Healthcare Partnership"),
    ("94265", "Kaiser Permanente"),
]


@dataclass
class Target:
    key: str
    label: str
    url: str
    server: subprocess.Popen[bytes]  # the process the load generator talks to
    baseline: str = ""  # key of the direct target this one is compared with ("": it is one)
    results: dict[str, Any] = field(default_factory=dict)


async def prepare_database(master_url: str) -> UUID:
    """The master database with one tenant holding a few payers."""
    [tenant] = await create_tenants(master_url, [("bench", "Bench")])
    async with bulk_load(tenant.database_url) as conn:
        await conn.execute(
            sa.text("INSERT INTO ref.payer (payer_code, name) VALUES (:code, :name)"),
            [{"code": code, "name": payer} for code, payer in PAYERS],
        )
    return tenant.tenant_id


# ---------------------------------------------------------------- load


_DURATION = re.compile(r"^([\d.]+)(us|ms|s|m)$")


def _ms(text: str) -> float:
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"unexpected wrk duration {text!r}")
    value, unit = float(match[1]), match[2]
    return round(value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit], 3)


def parse_wrk(output: str) -> dict[str, Any]:
    result: dict[str, Any] = {"latency_ms": {}, "non_2xx": 0, "errors": 0}
    for line in output.splitlines():
        line = line.strip()
        if match := re.match(r"^(50|90|99)%\s+(\S+)$", line):
            result["latency_ms"][f"p{match[1]}"] = _ms(match[2])
        elif match := re.match(r"^Latency\s+(\S+)\s+\S+\s+(\S+)", line):
            result["latency_ms"]["max"] = _ms(match[2])
        elif match := re.match(r"^(\d+) requests in ([\d.]+)(\w+),", line):
            result["requests"] = int(match[1])
        elif match := re.match(r"^Non-2xx or 3xx responses: (\d+)", line):
            result["non_2xx"] = int(match[1])
        elif line.startswith("Socket errors:"):
            result["errors"] = sum(int(n) for n in re.findall(r"\d+", line))
        elif match := re.match(r"^Requests/sec:\s+([\d.]+)", line):
            result["achieved_rate"] = float(match[1])
    return result


def saturate(
    target: Target, token: str, connections: int, seconds: float, warmup: float, wrk: str | None
) -> dict[str, Any]:
    header = f"Authorization: Bearer {token}"
    url = target.url + PATH
    if wrk:
        threads = str(min(os.cpu_count() or 1, 2))
        base = [wrk, "-t", threads, "-c", str(connections), "-H", header, "--latency"]
        subprocess.run([*base, "-d", f"{warmup:g}s", url], capture_output=True, check=True)
        server_before = process_cpu_seconds(target.server.pid)
        cpu_before, started = children_cpu_seconds(), time.perf_counter()
        out = subprocess.run(
            [*base, "-d", f"{seconds:g}s", url], capture_output=True, text=True, check=True
        )
        wall = time.perf_counter() - started
        result = parse_wrk(out.stdout)
        result["loadgen_cpu"] = (children_cpu_seconds() - cpu_before) / wall
    else:
        server_before = process_cpu_seconds(target.server.pid)
        result, result["loadgen_cpu"] = run_loadgen(
            [
                "closed",
                "--url",
                url,
                "--connections",
                str(connections),
                "--seconds",
                f"{seconds:g}",
                "--warmup",
                f"{warmup:g}",
                "-H",
                header,
            ]
        )
        # the closed loop's warm-up ran on the server too: count it in its requests
        result["server_requests"] = result["requests"] * (seconds + warmup) / seconds
    result["server_requests"] = result.get("server_requests", result.get("requests", 0))
    result["server_cpu_seconds"] = process_cpu_seconds(target.server.pid) - server_before
    return result


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of equal length into one result: rates and CPU shares averaged, counts
    added, latency percentiles averaged over the rounds (max: the largest)."""
    latency: dict[str, float] = {}
    for q in ("p50", "p90", "p99"):
        values = [run["latency_ms"][q] for run in runs if q in run["latency_ms"]]
        if values:
            latency[q] = round(sum(values) / len(values), 3)
    latency["max"] = max(run["latency_ms"].get("max", 0.0) for run in runs)
    served = sum(run["server_requests"] for run in runs)
    return {
        "rounds": runs,
        "achieved_rate": sum(run["achieved_rate"] for run in runs) / len(runs),
        "requests": sum(run.get("requests", 0) for run in runs),
        "non_2xx": sum(run["non_2xx"] for run in runs),
        "errors": sum(run["errors"] for run in runs),
        "latency_ms": latency,
        "loadgen_cpu": sum(run["loadgen_cpu"] for run in runs) / len(runs),
        "server_cpu_us_per_request": round(
            sum(run["server_cpu_seconds"] for run in runs) / served * 1e6, 1
        )
        if served
        else None,
    }


# ---------------------------------------------------------------- report


def software(pg: str) -> dict[str, str]:
    wrk = shutil.which("wrk")
    wrk_version = f"not installed ({WRK_INSTALL})"
    if wrk:
        banner = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False).stdout
        wrk_version = banner.split(" [")[0]  # "wrk debian/4.1.0-3+b2 [epoll] Copyright..."
    packages = ("uvicorn", "uvloop", "httptools", "aiohttp", "httpx", "fastapi", "starlette")
    return versions(*packages) | {"postgresql": pg, "wrk": wrk_version}


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}{unit}"
    return f"{value:,}{unit}"


def render(targets: list[Target], info: dict[str, Any], args: argparse.Namespace) -> str:
    by_key = {t.key: t for t in targets}

    def base(target: Target, phase: str) -> dict[str, Any]:
        result: dict[str, Any] = by_key[target.baseline or target.key].results[phase]
        return result

    def added(target: Target, q: str) -> float:
        return float(
            target.results["rate"]["latency_ms"][q] - base(target, "rate")["latency_ms"][q]
        )

    def share(target: Target) -> float:
        return float(
            target.results["saturation"]["achieved_rate"]
            / base(target, "saturation")["achieved_rate"]
        )

    gateway = by_key["gateway"]
    m, s = info["machine"], info["software"]
    wrk = info["wrk"]
    lines = [
        f"# Gateway overhead, {info['started']}",
        "",
        machine_line(m),
        "- **Software**: Python {python}, uvicorn {uvicorn} (uvloop {uvloop}, httptools "
        "{httptools}), aiohttp {aiohttp}, httpx {httpx}, FastAPI {fastapi}, Starlette "
        "{starlette}, PostgreSQL {postgresql}".format(**s),
        f"- **Endpoint**: `GET {PATH}` with a bearer token, {info['body_bytes']:,} bytes of "
        f"JSON ({len(PAYERS)} payers). contracts-api and each gateway are uvicorn with one "
        f"worker, `LOG_LEVEL={args.log_level}` (both write an access log line per request). "
        "The *stub* rows put the gateway in front of `bench/static_upstream.py`, a FastAPI "
        "app answering the same bytes with no token check and no database.",
        f"- **Load generators**: (a) `python -m bench.loadgen rate`: aiohttp on uvloop, open "
        f"loop at {args.rate:g} requests/s, the targets taking turns in "
        f"{args.block:g}-second blocks, {args.seconds:g} s measured per target after two "
        f"unmeasured rounds; (b) "
        + (f"{s['wrk']}, 2 threads" if wrk else "`python -m bench.loadgen closed`")
        + f", {args.connections} connections, {args.seconds:g} s per target in "
        f"{args.rounds} turns, each after a short unmeasured warm-up. Load generator CPU (a): "
        f"{info['rate_loadgen_cpu']:.0%} of a core.",
        "",
        "## Summary",
        "",
        f"- **(a) latency the gateway adds at {args.rate:g} requests/s** to `GET {PATH}`: "
        f"**{added(gateway, 'p50') * 1000:+.0f} µs at p50** (target ≤ 1 ms: "
        f"**{'met' if added(gateway, 'p50') <= 1.0 else 'missed'}**), "
        f"{added(gateway, 'p99') * 1000:+.0f} µs at p99.",
        f"- **(b) saturation throughput through the gateway**: **{share(gateway):.0%} of "
        f"direct** (target ≥ 50 %: **{'met' if share(gateway) >= 0.5 else 'missed'}**).",
    ]
    if "httpx" in by_key and "aiohttp" in by_key:
        lines.append(
            f"- **Client choice**: a minimal forwarder on aiohttp reached "
            f"{share(by_key['aiohttp']):.2f}x of direct, the same forwarder on httpx "
            f"{share(by_key['httpx']):.2f}x (p99 at {args.rate:g} requests/s: "
            f"{added(by_key['aiohttp'], 'p99'):+.2f} ms vs {added(by_key['httpx'], 'p99'):+.2f}"
            " ms)."
        )
    if "static-gateway" in by_key:
        static = by_key["static-gateway"]
        lines.append(
            f"- **In front of the stub service** (the proxy's own cost laid bare): "
            f"{added(static, 'p50') * 1000:+.0f} µs at p50, "
            f"{static.results['saturation']['achieved_rate']:,.0f} requests/s = "
            f"{share(static):.2f}x of the stub alone, "
            f"{static.results['saturation'].get('server_cpu_us_per_request', 0):,.0f} µs of "
            "gateway CPU per request."
        )
    lines += [
        "",
        f"## (a) Fixed load, {args.rate:g} requests/s",
        "",
        "| target | requests | errors | p50 ms | p90 ms | p99 ms | max ms | added p50 | "
        "added p99 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for target in targets:
        r = target.results["rate"]
        lat = r["latency_ms"]
        lines.append(
            f"| {target.label} | {r['requests']:,} | {r['errors'] + r['non_2xx']} | "
            f"{lat['p50']:.3f} | {lat['p90']:.3f} | {lat['p99']:.3f} | {lat['max']:.3f} | "
            + (
                f"{added(target, 'p50'):+.3f} ms | {added(target, 'p99'):+.3f} ms |"
                if target.baseline
                else "- | - |"
            )
        )
    lines += [
        "",
        f"## (b) Saturation, {args.connections} connections",
        "",
        "| target | requests/s | share of direct | p50 ms | p99 ms | non-2xx + errors | "
        "CPU per request | load generator CPU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for target in targets:
        r = target.results["saturation"]
        lat = r["latency_ms"]
        cpu = r.get("server_cpu_us_per_request")
        lines.append(
            f"| {target.label} | {r['achieved_rate']:,.0f} | "
            + (f"{share(target):.2f}x" if target.baseline else "1.00x")
            + f" | {_fmt(lat.get('p50'))} | {_fmt(lat.get('p99'))} | "
            f"{r['errors'] + r['non_2xx']} | "
            + (f"{cpu:,.0f} µs" if cpu is not None else "-")
            + f" | {r['loadgen_cpu']:.0%} of a core |"
        )
    lines += [
        "",
        "## Reading it",
        "",
        "- *gateway* is the product's gateway (`python -m gateway.app`: request id, access "
        "log, metrics, hop-by-hop filtering, streamed bodies). The *minimal forwarders* "
        "(`bench/forwarders.py`) are bare ASGI apps with one pooled client each and nothing "
        "else, so the gap between them is the HTTP client's cost alone.",
        "- *CPU per request* is the CPU time of the process the load generator talks to "
        "(contracts-api, the gateway, a forwarder, the stub) over the requests "
        "it served; the gateway rows count the gateway only, not the service behind it.",
        "- Every process shares the same cores: at saturation the proxy, the service, "
        "PostgreSQL and the load generator compete for them, so a share of direct "
        "throughput is a share of what this machine can do in total.",
        "- Latency in (a) runs from sending a request until its whole body is read; "
        "requests leave on a fixed schedule (open loop), so a slow answer does not delay "
        "the next request, and the targets take turns so that they share the conditions.",
    ]
    lines.append(
        "- (b) runs each target in turns (the services' own speed drifts over a run, and "
        "turns share the drift); its rates and percentiles are the means over the turns."
    )
    if not wrk:
        lines.append(
            "- (b) used the Python closed loop (wrk is not installed, or `--python-loadgen`), "
            "which needs far more CPU per request than wrk and so leaves the servers less of "
            f"the machine; install wrk with `{WRK_INSTALL}`."
        )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main


async def start_targets(
    ws: Workspace, args: argparse.Namespace, auth_header: dict[str, str]
) -> list[Target]:
    contracts = ws.contracts_api()
    await ws.wait_until_up(contracts)
    gateway = ws.gateway("gateway", contracts.url)
    targets = [
        Target("direct", "direct (contracts-api)", contracts.url, contracts.proc),
        Target("gateway", "gateway → contracts-api", gateway.url, gateway.proc, "direct"),
    ]
    if not args.gateway_only:
        for client in ("aiohttp", "httpx"):
            port = free_port()
            proc = ws.processes.start(
                f"forwarder-{client}",
                [
                    "-m",
                    "bench.forwarders",
                    "--client",
                    client,
                    "--port",
                    str(port),
                    "--upstream",
                    contracts.url,
                ],
                {},
            )
            targets.append(
                Target(
                    client,
                    f"minimal forwarder ({client}) → contracts-api",
                    f"http://{LOOPBACK}:{port}",
                    proc,
                    "direct",
                )
            )
    if not args.no_static:
        body = ws.log_dir / "payers.json"
        async with httpx.AsyncClient(timeout=10) as http:
            payers = await http.get(contracts.url + PATH, headers=auth_header)
        await asyncio.to_thread(body.write_bytes, payers.content)
        port = free_port()
        static = ws.processes.start(
            "static-upstream",
            ["-m", "bench.static_upstream", "--port", str(port), "--body", str(body)],
            {},
        )
        static_url = f"http://{LOOPBACK}:{port}"
        await ws.processes.wait_until_up(static, static_url + PATH)
        stub_gateway = ws.gateway("gateway-static", static_url)
        targets.append(Target("static-direct", "stub service, direct", static_url, static))
        targets.append(
            Target(
                "static-gateway",
                "gateway → stub service",
                stub_gateway.url,
                stub_gateway.proc,
                "static-direct",
            )
        )
    for target in targets:
        await ws.processes.wait_until_up(target.server, target.url + "/healthz")
    return targets


async def check_answers(targets: list[Target], auth_header: dict[str, str]) -> int:
    """Every target answers the same bytes as contracts-api; their length."""
    async with httpx.AsyncClient(headers=auth_header, timeout=10) as client:
        reference = await client.get(targets[0].url + PATH)
        for target in targets:
            response = await client.get(target.url + PATH)
            if response.status_code != 200 or response.content != reference.content:
                raise RuntimeError(f"{target.key}: {response.status_code} {response.text[:300]}")
    return len(reference.content)


def measure(
    targets: list[Target], args: argparse.Namespace, token: str, wrk: str | None
) -> dict[str, Any]:
    """(a) then (b); each target's results in ``target.results``. Returns what (a)'s
    load generator said of itself."""
    rate, rate_cpu = run_loadgen(
        ["rate", "--rate", f"{args.rate:g}", "--seconds", f"{args.seconds:g}"]
        + ["--block", f"{args.block:g}", "-H", f"Authorization: Bearer {token}"]
        + [arg for t in targets for arg in ("--url", t.url + PATH)]
    )
    for target in targets:
        target.results["rate"] = rate["targets"][target.url + PATH]
    # Rounds, the targets taking turns: the services' own speed drifts over a run
    # (contracts-api between 300 and 440 requests/s here), and turns share the drift.
    runs: dict[str, list[dict[str, Any]]] = {target.key: [] for target in targets}
    for round_ in range(args.rounds):
        for target in targets:
            log(f"(b) saturation, round {round_ + 1}/{args.rounds}, {target.label} ...")
            runs[target.key].append(
                saturate(
                    target,
                    token,
                    args.connections,
                    args.seconds / args.rounds,
                    args.warmup if round_ == 0 else min(args.warmup, 1.0),
                    wrk,
                )
            )
    for target in targets:
        target.results["saturation"] = combine(runs[target.key])
    return {"rate_loadgen_cpu": rate_cpu, "rate_schedule_lateness_ms": rate["schedule_lateness_ms"]}


async def run(args: argparse.Namespace, report_dir: Path = RESULTS) -> Path:
    """Run the benchmark; write its report (markdown and JSON) to ``report_dir`` and
    return the markdown's path."""
    async with workspace(report_dir, "gateway-overhead", log_level=args.log_level) as ws:
        log(f"preparing database {ws.database} ...")
        tenant_id = await prepare_database(ws.master_url)
        token = ws.token(tenant_id, "config.read")
        auth_header = {"Authorization": f"Bearer {token}"}
        wrk = None if args.python_loadgen else shutil.which("wrk")
        targets = await start_targets(ws, args, auth_header)
        body_bytes = await check_answers(targets, auth_header)
        log(
            f"(a) {args.rate:g} requests/s, {len(targets)} targets taking turns, "
            f"{args.seconds:g} s each ..."
        )
        loadgen = await asyncio.to_thread(measure, targets, args, token, wrk)
        info = {
            "started": ws.started_label,
            "machine": machine(),
            "software": software(await postgres_version(ws.server_url)),
            "body_bytes": body_bytes,
            "rate_loadgen_cpu": loadgen["rate_loadgen_cpu"],
            "wrk": wrk,
            "rate_schedule_lateness_ms": loadgen["rate_schedule_lateness_ms"],
        }
        report = render(targets, info, args)
        path = await ws.write(
            report, {**info, "args": vars(args), "targets": {t.key: t.results for t in targets}}
        )
        print(report)
        return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per target")
    parser.add_argument("--warmup", type=float, default=2.0, help="(b): unmeasured time first")
    parser.add_argument("--rate", type=float, default=100.0, help="(a): requests/s")
    parser.add_argument("--block", type=float, default=0.5, help="(a): seconds per turn")
    parser.add_argument("--connections", type=int, default=32, help="(b): connections")
    parser.add_argument("--rounds", type=int, default=2, help="(b): turns per target")
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of the servers")
    parser.add_argument(
        "--gateway-only", action="store_true", help="skip the minimal aiohttp/httpx forwarders"
    )
    parser.add_argument("--no-static", action="store_true", help="skip the stub service")
    parser.add_argument(
        "--python-loadgen", action="store_true", help="(b): the Python closed loop, not wrk"
    )
    args = parser.parse_args(argv)
    path = asyncio.run(run(args))
    log(f"report written to {path.relative_to(REPO)}")
