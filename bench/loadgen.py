"""A small HTTP load generator, run as its own process so its CPU time can be measured.

``python -m bench.loadgen rate --url A [--url B ...] --rate 100 --seconds 10 [-H 'K: V']``
    open loop: requests leave on a fixed schedule whether or not earlier ones returned
    (what a constant-rate tool such as wrk2 does, which Debian does not package); with
    several URLs they take turns in short blocks, each getting ``--seconds`` in all.
``python -m bench.loadgen closed --url U --connections 32 --seconds 10``
    closed loop: each connection sends its next request when the last one returned
    (wrk's model; the fallback when wrk is not installed).

Prints one JSON object: counts, errors, the achieved rate and latency percentiles (ms).
Latency is measured from the moment a request is sent until its whole body is read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import aiohttp
import uvloop


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

    return {"p50": at(0.50), "p90": at(0.90), "p95": at(0.95), "p99": at(0.99), "max": at(1.0)}


def _session(connections: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, keepalive_timeout=4),
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
        timeout=aiohttp.ClientTimeout(total=30),
    )


async def _one(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    latencies: list[float] | None,
    counts: dict[str, int],
) -> None:
    started = time.perf_counter()
    try:
        async with session.get(url, headers=headers) as response:
            await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError):
        counts["errors"] += 1
        return
    if latencies is not None:
        latencies.append(time.perf_counter() - started)
    counts["ok" if status < 400 else "non_2xx"] += 1


async def constant_rate(
    urls: list[str], headers: dict[str, str], rate: float, seconds: float, block: float
) -> dict[str, Any]:
    """``rate`` requests/s for ``seconds`` per URL, the URLs taking turns in blocks of
    ``block`` seconds, so that every target sees the same conditions (a drift of the
    machine over the run touches them all alike). Two unmeasured rounds warm them up."""
    loop = asyncio.get_running_loop()
    latencies: dict[str, list[float]] = {url: [] for url in urls}
    counts = {url: {"ok": 0, "non_2xx": 0, "errors": 0} for url in urls}
    late: list[float] = []
    per_block = max(1, round(rate * block))
    warmup_blocks = 2 * len(urls)
    blocks = warmup_blocks + len(urls) * max(1, round(seconds / block))
    async with _session(0) as session:
        tasks: set[asyncio.Task[None]] = set()
        start = loop.time() + 0.05
        for i in range(blocks * per_block):
            due = start + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            block_index = i // per_block
            url = urls[block_index % len(urls)]
            recording = block_index >= warmup_blocks
            if recording:
                late.append(max(0.0, loop.time() - due))
            task = asyncio.create_task(
                _one(session, url, headers, latencies[url] if recording else None, counts[url])
            )
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks)
    return {
        "mode": "constant-rate",
        "rate": rate,
        "block_seconds": block,
        "schedule_lateness_ms": percentiles(late),
        "targets": {
            url: {
                "requests": len(latencies[url]),
                "non_2xx": counts[url]["non_2xx"],
                "errors": counts[url]["errors"],
                "latency_ms": percentiles(latencies[url]),
            }
            for url in urls
        },
    }


async def closed_loop(
    url: str, headers: dict[str, str], connections: int, seconds: float, warmup: float
) -> dict[str, Any]:
    latencies: list[float] = []
    counts = {"ok": 0, "non_2xx": 0, "errors": 0}
    async with _session(connections) as session:
        measuring = False
        deadline = time.perf_counter() + warmup + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                await _one(session, url, headers, latencies if measuring else None, counts)

        workers = [asyncio.create_task(worker()) for _ in range(connections)]
        await asyncio.sleep(warmup)
        measuring = True
        counts.update(ok=0, non_2xx=0, errors=0)
        started = time.perf_counter()
        await asyncio.gather(*workers)
        elapsed = time.perf_counter() - started
    done = counts["ok"] + counts["non_2xx"]
    return {
        "mode": "closed-loop",
        "connections": connections,
        "seconds": round(elapsed, 2),
        "requests": done,
        "achieved_rate": round(done / elapsed, 1),
        "non_2xx": counts["non_2xx"],
        "errors": counts["errors"],
        "latency_ms": percentiles(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["rate", "closed"])
    parser.add_argument("--url", action="append", required=True, help="repeat: taking turns")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0, help="closed loop only")
    parser.add_argument("--block", type=float, default=0.5, help="rate mode: seconds per turn")
    parser.add_argument("-H", "--header", action="append", default=[])
    args = parser.parse_args()
    headers = dict(item.split(": ", 1) for item in args.header)
    if args.mode == "rate":
        work = constant_rate(args.url, headers, args.rate, args.seconds, args.block)
    else:
        work = closed_loop(args.url[0], headers, args.connections, args.seconds, args.warmup)
    result = uvloop.run(work)  # uvloop comes with uvicorn[standard]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
