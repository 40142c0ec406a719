"""X12 codec: the pure X12 cost of one eligibility check, in-process (issue 4).

No network, no database, no worker: the functions a check calls on its way out and on
its way back, timed one call at a time in this process.

(1) ``build_270`` for a subscriber inquiry and for a dependent inquiry (2000D);
(2) ``parse_271`` of a rich 271 (``lfh_271_subscriber_active.x12``: EB*1, a 2120C PCP,
    copays with a repeating EB03) and of a short inactive one (``EB*6``);
(3) build + parse together: one check's pure X12 cost (the subscriber 270 asks exactly
    what the rich 271 answers, same payer, member, trace number and date of service);
(4) ``parse_999`` of a 999 rejecting a 270;

and a baseline measured in the same run: ``str.split`` tokenisation of the rich 271
(segments, then elements), the floor any X12 parser pays, so each row also reads as a
ratio that does not depend on the machine. The operations take turns in blocks (rounds)
so that they share the machine's conditions; each call is timed with
``time.perf_counter_ns`` after an untimed warm-up, with the garbage collector left on, as
in a worker.

``python -m bench.x12_codec`` runs it alone; ``run(report_dir)`` returns the report's
markdown and writes it, with the raw figures, to ``report_dir``.
"""

from __future__ import annotations

import argparse
import gc
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.support import RESULTS, load_average, log, machine, machine_line, write_report
from eligibility_sweeps.x12.build270 import (
    Dependent,
    Envelope,
    Inquiry,
    Payer,
    PersonName,
    Provider,
    Subscriber,
    build_270,
)
from eligibility_sweeps.x12.read271 import CoverageStatus, parse_271
from eligibility_sweeps.x12.read_ack import AckStatus, parse_999
from eligibility_sweeps.x12.segments import parse_interchange

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "x12" / "samples"
RICH_271 = "lfh_271_subscriber_active.x12"
INACTIVE_271 = "synthetic_271_inactive_EB6.x12"
REJECT_999 = "synthetic_999_reject_270.x12"
SERVICE_DATE = date(2006, 5, 1)  # the date of service the rich 271 answers for
BASELINE = "split"
CPU_SHARE_WARNING = 0.9  # below this share of a core, the report flags contention


@dataclass(frozen=True)
class Options:
    iterations: int = 5_000  # timed calls per operation
    rounds: int = 10  # the operations take turns in this many blocks
    warmup: int = 500  # untimed calls per operation before the first round


@dataclass(frozen=True)
class Operation:
    key: str
    label: str
    call: Callable[[], object]


# ---------------------------------------------------------------- inputs


def envelope() -> Envelope:
    return Envelope(
        sender_id="RCMDEMO",
        receiver_id="SANDBOX01",
        interchange_control_number=907,
        group_control_number=42,
        transaction_control_number=4321,
        timestamp=datetime(2026, 11, 22, 14, 5, 33, tzinfo=UTC),
        usage_indicator="T",
    )


def subscriber_inquiry() -> Inquiry:
    """What the rich 271 sample answers: same payer, member, trace and date of service."""
    return Inquiry(
        payer=Payer(code="841610001", name="ABC Company"),
        provider=Provider(npi="1234567893", name="Bone and Joint Clinic"),
        subscriber=Subscriber(
            member_id="123456789",
            name=PersonName(last="Smith", first="John"),
            birth_date=date(1963, 5, 19),
            gender="M",
        ),
        service_date=SERVICE_DATE,
        trace_number="93175-012547",
        trace_originator="9877281234",
    )


def dependent_inquiry() -> Inquiry:
    """A 2000D inquiry (the patient is the subscriber's dependent), two service types."""
    return Inquiry(
        payer=Payer(code="842610001", name="ABC Company"),
        provider=Provider(npi="1234567893", name=PersonName(last="Jones", first="Marcus")),
        subscriber=Subscriber(
            member_id="11122333301",
            name=PersonName(last="Smith", first="Robert", middle="J"),
            birth_date=date(1961, 2, 3),
            gender="M",
        ),
        dependent=Dependent(
            name=PersonName(last="Smith", first="Mary"), birth_date=date(1978, 10, 14), gender="F"
        ),
        service_date=SERVICE_DATE,
        trace_number="93175-012548",
        trace_originator="9877281234",
        service_types=("30", "88"),
    )


def _tokenise(text: str) -> list[list[str]]:
    return [segment.split("*") for segment in text.split("~")]


def operations(texts: dict[str, str]) -> list[Operation]:
    env, sub, dep = envelope(), subscriber_inquiry(), dependent_inquiry()
    rich, inactive, ack = texts[RICH_271], texts[INACTIVE_271], texts[REJECT_999]

    def check() -> object:
        build_270(env, sub)
        return parse_271(rich, service_date=SERVICE_DATE)

    return [
        Operation(BASELINE, "baseline: `str.split` of the rich 271", lambda: _tokenise(rich)),
        Operation("build_sub", "`build_270`, subscriber inquiry", lambda: build_270(env, sub)),
        Operation("build_dep", "`build_270`, dependent inquiry", lambda: build_270(env, dep)),
        Operation(
            "parse_rich",
            "`parse_271`, rich 271 (active)",
            lambda: parse_271(rich, service_date=SERVICE_DATE),
        ),
        Operation(
            "parse_inactive",
            "`parse_271`, inactive 271 (EB*6)",
            lambda: parse_271(inactive, service_date=SERVICE_DATE),
        ),
        Operation("check", "**one check: build 270 + parse rich 271**", check),
        Operation("parse_999", "`parse_999`, 999 rejecting a 270", lambda: parse_999(ack)),
    ]


def verify(texts: dict[str, str]) -> dict[str, Any]:
    """What is timed does the real work: the 270s are well-formed interchanges, the 271s
    and the 999 read as the samples say. Returns the inputs' sizes for the report."""
    env, sub, dep = envelope(), subscriber_inquiry(), dependent_inquiry()
    sizes: dict[str, Any] = {}
    for key, inquiry in (("270 subscriber", sub), ("270 dependent", dep)):
        text = build_270(env, inquiry)
        interchange = parse_interchange(text)
        sets = [t.set_id for g in interchange.groups for t in g.transactions]
        if sets != ["270"] or interchange.warnings:
            raise RuntimeError(f"{key}: {sets} {interchange.warnings}")
        sizes[key] = {"bytes": len(text), "segments": len(interchange.segments)}
    rich = parse_271(texts[RICH_271], service_date=SERVICE_DATE)
    if rich.coverage_status is not CoverageStatus.ACTIVE or rich.trace_numbers != (
        sub.trace_number,
    ):
        raise RuntimeError(f"rich 271: {rich.coverage_status}, traces {rich.trace_numbers}")
    inactive = parse_271(texts[INACTIVE_271], service_date=SERVICE_DATE)
    if inactive.coverage_status is not CoverageStatus.INACTIVE:
        raise RuntimeError(f"inactive 271: {inactive.coverage_status}")
    ack = parse_999(texts[REJECT_999])
    if ack.status is not AckStatus.REJECTED or ack.failure_reason() is None:
        raise RuntimeError(f"999: {ack.status}")
    for name in (RICH_271, INACTIVE_271, REJECT_999):
        sizes[name] = {
            "bytes": len(texts[name]),
            "segments": len(parse_interchange(texts[name]).segments),
        }
    sizes["rich benefits"] = len(rich.benefits)
    return sizes


# ---------------------------------------------------------------- timing


def _timed(call: Callable[[], object], n: int, out: list[int]) -> None:
    clock = time.perf_counter_ns
    for _ in range(n):
        start = clock()
        call()
        out.append(clock() - start)


def _percentile(ordered: list[int], q: float) -> float:
    """Nearest rank, in µs."""
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1] / 1000


def summarise(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    total = sum(ordered)
    return {
        "calls": len(ordered),
        "ops_per_s": len(ordered) * 1e9 / total,
        "mean_us": total / len(ordered) / 1000,
        "p50_us": _percentile(ordered, 50),
        "p95_us": _percentile(ordered, 95),
        "p99_us": _percentile(ordered, 99),
        "max_us": ordered[-1] / 1000,
    }


def measure(ops: list[Operation], options: Options) -> tuple[dict[str, dict[str, float]], float]:
    """Every operation, taking turns in ``options.rounds`` blocks. Also times an empty
    call the same way: the timer's and the call's own overhead, included in every row."""
    empty = Operation("empty", "empty call", lambda: None)
    everything = [*ops, empty]
    for op in everything:
        for _ in range(options.warmup):
            op.call()
    per_block = max(1, options.iterations // options.rounds)
    samples: dict[str, list[int]] = {op.key: [] for op in everything}
    gc.collect()
    for _ in range(options.rounds):
        for op in everything:
            _timed(op.call, per_block, samples[op.key])
    overhead = summarise(samples.pop(empty.key))["p50_us"]
    return {key: summarise(values) for key, values in samples.items()}, overhead


# ---------------------------------------------------------------- report


def software() -> dict[str, str]:
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "eligibility_sweeps": version("eligibility-sweeps"),
    }


def render(
    info: dict[str, Any], options: Options, ops: list[Operation], results: dict[str, Any]
) -> str:
    m, s, sizes = info["machine"], info["software"], info["inputs"]
    base = results[BASELINE]
    check = results["check"]

    def size(name: str) -> str:
        return f"{sizes[name]['bytes']:,} bytes, {sizes[name]['segments']} segments"

    lines = [
        f"# X12 codec: the pure X12 cost of a check, {info['started']}",
        "",
        machine_line(m, info["load_average"]),
        f"- **Software**: {s['python']}, eligibility-sweeps {s['eligibility_sweeps']} "
        "(`eligibility_sweeps.x12`: pure Python)",
        f"- **Inputs**: rich 271 `{RICH_271}` ({size(RICH_271)}, {sizes['rich benefits']} "
        f"EB lines), inactive 271 `{INACTIVE_271}` ({size(INACTIVE_271)}), 999 "
        f"`{REJECT_999}` ({size(REJECT_999)}); the built 270s are "
        f"{size('270 subscriber')} (subscriber) and {size('270 dependent')} (dependent, "
        "2000D, two EQ loops). Checked before timing: both 270s read back as one 270 "
        "interchange with no envelope warning, the rich 271 reads ACTIVE and echoes the "
        "subscriber 270's trace number, the inactive one INACTIVE, the 999 REJECTED.",
        f"- **Method**: one process, one thread; {options.warmup:,} untimed calls per "
        f"operation, then {base['calls']:,} timed calls each, the operations taking "
        f"turns in {options.rounds} blocks; each call timed with `time.perf_counter_ns` "
        f"(an empty call measures {info['timer_overhead_us']:.2f} µs at p50 this way, "
        "included in every row); garbage collector on. ops/s is calls over the sum of "
        f"their times (one core, no parallelism). The run took {info['seconds']:g} s, "
        f"this process on the CPU for {info['cpu_share']:.0%} of it"
        + (
            "."
            if info["cpu_share"] >= CPU_SHARE_WARNING
            else " (**other processes competed for the cores: the figures are pessimistic**)."
        ),
        "",
        f"**Pure X12 cost per check (build 270 + parse 271): {check['ops_per_s']:,.0f} "
        f"checks/s on one core, p50 {check['p50_us']:,.1f} µs, p95 "
        f"{check['p95_us']:,.1f} µs.**",
        "",
        "| operation | calls | ops/s | mean µs | p50 µs | p95 µs | p99 µs | max µs | "
        "vs baseline (p50) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for op in ops:
        r = results[op.key]
        lines.append(
            f"| {op.label} | {r['calls']:,} | {r['ops_per_s']:,.0f} | {r['mean_us']:,.1f} | "
            f"{r['p50_us']:,.1f} | {r['p95_us']:,.1f} | {r['p99_us']:,.1f} | "
            f"{r['max_us']:,.1f} | {r['p50_us'] / base['p50_us']:,.1f}x |"
        )
    lines += [
        "",
        "The baseline only cuts the rich 271 into segments and elements (`~`, then `*`), "
        "which any reader has to do; `parse_271` also strips layout, upper-cases segment "
        "ids, checks the ISA and the SE/GE/IEA counts and control numbers, walks the loops "
        "and builds frozen dataclasses (dates, decimals, code descriptions). `build_270` "
        "normalises every name (Unicode NFKD, per character), checks every value against "
        "the X12 character set and the delimiters, and checks the NPI's Luhn digit. "
        "max and p99 include garbage-collector pauses and scheduler noise.",
    ]
    return "\n".join(lines) + "\n"


def run(report_dir: Path, options: Options | None = None) -> str:
    """Run the benchmark; write its report (markdown and JSON) to ``report_dir``."""
    options = options or Options()
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    texts = {
        name: (SAMPLES / name).read_text(encoding="ascii")
        for name in (RICH_271, INACTIVE_271, REJECT_999)
    }
    sizes = verify(texts)
    ops = operations(texts)
    load = load_average()
    log(f"{len(ops)} operations x {options.iterations:,} calls in {options.rounds} rounds ...")
    clock, cpu = time.perf_counter(), time.process_time()
    results, overhead = measure(ops, options)
    wall, cpu = time.perf_counter() - clock, time.process_time() - cpu
    info: dict[str, Any] = {
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "software": software(),
        "load_average": load,
        "inputs": sizes,
        "timer_overhead_us": overhead,
        "seconds": round(wall, 1),
        "cpu_share": cpu / wall,
    }
    report = render(info, options, ops, results)
    raw = {**info, "options": asdict(options), "results": results}
    write_report(report_dir / f"x12-codec-{stamp}", report, raw)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.x12_codec", description=__doc__)
    parser.add_argument(
        "--iterations", type=int, default=Options.iterations, help="timed calls per operation"
    )
    parser.add_argument("--rounds", type=int, default=Options.rounds, help="blocks per operation")
    parser.add_argument(
        "--warmup", type=int, default=Options.warmup, help="untimed calls per operation"
    )
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--iterations and --rounds must be at least 1, --warmup at least 0")
    print(run(RESULTS, Options(args.iterations, args.rounds, args.warmup)))


if __name__ == "__main__":
    main()
