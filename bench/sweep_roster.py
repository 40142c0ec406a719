"""Sweep roster: what the worker's roster SQL costs on a large tenant.

One tenant per size, loaded in bulk with ``generate_series`` SQL: ``--members`` members
(each with one coverage policy, half with each of two payers, one in 20 ending on
2026-03-31) and one visit per member per month over 2026 (12 service events each, over
10 facilities; one in 20 CANCELLED, one in 20 NO_SHOW, the rest COMPLETED before July
and SCHEDULED after), then ``VACUUM ANALYZE``.

Measured, over 7-day windows spread over the year (a different window each repeat; the
queries take turns within a repeat, so they share the machine's conditions):

- **first leg**: the worker's visits subquery (events in the window and facility, not
  CANCELLED/NO_SHOW, grouped by member), whole tenant and one facility;
- **both legs**: the worker's roster ``SELECT`` (with the coverage legs), without
  writing, whole tenant, one facility and one payer;
- **baseline**: a bare ``SELECT count(*)`` of the visits the first leg reads (window
  and statuses), without grouping: the first leg's floor;
- **materialisation**: a RUNNING run row, then ``write_roster`` (the worker's function:
  lock, ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``, ``roster_at``) and commit;
  rows per second.

The queries are the worker's own text (``eligibility_sweeps.worker.roster``), wrapped
in ``SELECT count(*) FROM (...)`` so that no rows travel to the client. Everything is
measured twice: with the migrations' indexes (the roster's covering index
``ix_service_event_roster``, ``(status, service_date) INCLUDE (facility_id, member_id)``),
then with it replaced by the plain ``(status, service_date)`` index the tree had before
``s0006`` (then ``VACUUM ANALYZE`` again), which shows what the covering index buys.

``python -m bench.sweep_roster`` runs it alone; ``run(report_dir)`` returns the
report's markdown and writes it, with the raw figures, to ``report_dir``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bench.loadgen import percentiles
from bench.support import (
    RESULTS,
    bulk_load,
    create_tenants,
    log,
    machine,
    machine_line,
    postgres_settings,
    versions,
    workspace,
)
from eligibility_sweeps.models import MemberStatus
from eligibility_sweeps.worker import roster
from rcm_kit.db import create_engine

FACILITIES = 10
YEAR = date(2026, 1, 1)
WINDOW_DAYS = 7
ROSTER_INDEX = "ix_service_event_roster"
PLAIN = "ix_bench_service_event_plain"
PG_SETTINGS = ("server_version", "shared_buffers", "work_mem", "jit")
VARIANTS = ("migrations", "plain")
TARGETS = {"first_leg_p95_ms": 30.0, "both_legs_p95_ms": 150.0, "rows_per_second": 40_000.0}

# The worker's statement, taken apart: its SELECT (both legs) and its visits subquery
# (the first leg), so that the bench follows the worker's SQL rather than a copy.
_SQL = roster._ROSTER.text
_BOTH = _SQL[_SQL.index("SELECT :run_id") : _SQL.index("ON CONFLICT")]
_FIRST = _SQL[_SQL.index("FROM (") + len("FROM (") : _SQL.index(") AS visits")]
_TYPES = (
    sa.bindparam("payer_ids", type_=ARRAY(sa.Uuid)),
    sa.bindparam("facility_id", type_=sa.Uuid),
    sa.bindparam("run_id", type_=sa.Uuid),
    sa.bindparam("visit_statuses", type_=ARRAY(sa.String)),
    # Typed by its column in the INSERT; outside it, the select list needs the type.
    sa.bindparam("now", type_=sa.DateTime(timezone=True)),
)
FIRST_LEG = f"SELECT count(*) FROM ({_FIRST}) AS q"
BOTH_LEGS = f"SELECT count(*) FROM ({_BOTH}) AS q"
# The same rows as the first leg reads, counted without grouping: its floor.
BASELINE = (
    "SELECT count(*) FROM service.service_event"
    " WHERE service_date BETWEEN :date_from AND :date_to AND status = ANY(:visit_statuses)"
)


def statement(sql: str) -> sa.TextClause:
    """``sql`` with the worker's parameter types, for those it uses."""
    return sa.text(sql).bindparams(*(p for p in _TYPES if f":{p.key}" in sql))


LOAD = [
    f"""INSERT INTO ref.facility (facility_id, facility_code, name)
    SELECT md5('f' || f)::uuid, 'F' || f, 'Facility ' || f FROM generate_series(0, {FACILITIES - 1}) f""",
    """INSERT INTO ref.payer (payer_id, payer_code, name)
    SELECT md5('p' || p)::uuid, 'P' || p, 'Payer ' || p FROM generate_series(0, 1) p""",
    """INSERT INTO member.member (member_id, external_id, first_name, last_name, date_of_birth, gender)
    SELECT md5('m' || n)::uuid, 'MRN' || n, 'Ana', 'Lee', date '1950-01-01' + n % 20000,
           CASE WHEN n % 2 = 0 THEN 'F' ELSE 'M' END
    FROM generate_series(0, :members - 1) n""",
    """INSERT INTO member.coverage_policy
        (member_id, payer_id, subscriber_id, effective_from, effective_to)
    SELECT md5('m' || n)::uuid, md5('p' || n % 2)::uuid, 'S' || n, date '2025-01-01',
           CASE WHEN n % 20 = 0 THEN date '2026-03-31' END
    FROM generate_series(0, :members - 1) n""",
    f"""INSERT INTO service.service_event
        (external_id, member_id, facility_id, service_date, status)
    SELECT 'E' || n || '-' || k, md5('m' || n)::uuid, md5('f' || (n + k) % {FACILITIES})::uuid,
           d, CASE (n * 31 + k * 17) % 20 WHEN 0 THEN 'CANCELLED' WHEN 1 THEN 'NO_SHOW'
                   ELSE CASE WHEN d < date '2026-07-01' THEN 'COMPLETED' ELSE 'SCHEDULED' END END
    FROM generate_series(0, :members - 1) n, generate_series(0, 11) k,
         LATERAL (SELECT date '2026-01-01' + k * 30 + (n * 7 + k * 13) % 30 AS d) AS day""",
]


@dataclass(frozen=True)
class Options:
    sizes: tuple[int, ...] = (8_334, 83_334)  # members; x 12 events each
    repeats: int = 25
    materialise: int = 5
    warmup: int = 3


def windows(count: int) -> list[tuple[date, date]]:
    """``count`` 7-day windows spread over the year."""
    step = max(1, 350 // max(1, count))
    return [
        (YEAR + timedelta(days=3 + i * step % 350), YEAR + timedelta(days=9 + i * step % 350))
        for i in range(count)
    ]


def params(window: tuple[date, date], facility: UUID | None, payers: list[UUID]) -> dict[str, Any]:
    return {
        "run_id": uuid4(),
        "date_from": window[0],
        "date_to": window[1],
        "facility_id": facility,
        "payer_ids": payers,
        "visit_statuses": roster.VISIT_STATUSES,
        "queued": MemberStatus.QUEUED.value,
        "skipped": MemberStatus.SKIPPED.value,
        "no_coverage": roster.NO_COVERAGE,
        "now": datetime.now(UTC),
    }


def facility_id(n: int) -> UUID:
    return UUID(hashlib.md5(f"f{n}".encode(), usedforsecurity=False).hexdigest())


def payer_id(n: int) -> UUID:
    return UUID(hashlib.md5(f"p{n}".encode(), usedforsecurity=False).hexdigest())


QUERIES: dict[str, tuple[str, UUID | None, list[UUID]]] = {
    "baseline count(*)": (BASELINE, None, []),
    "first leg, tenant": (FIRST_LEG, None, []),
    "first leg, facility": (FIRST_LEG, facility_id(0), []),
    "both legs, tenant": (BOTH_LEGS, None, []),
    "both legs, facility": (BOTH_LEGS, facility_id(0), []),
    "both legs, one payer": (BOTH_LEGS, None, [payer_id(0)]),
}


async def load(database_url: str, members: int) -> float:
    started = time.perf_counter()
    async with bulk_load(database_url) as conn:
        for sql in LOAD:
            await conn.execute(sa.text(sql), {"members": members})
    await maintain(database_url, ["VACUUM ANALYZE"])
    return time.perf_counter() - started


async def maintain(database_url: str, commands: list[str]) -> None:
    """Each of ``commands`` (``VACUUM ANALYZE`` is run per table), outside a transaction."""
    engine = create_engine(database_url, pool_size=1, app_name="bench")
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            for command in commands:
                if command == "VACUUM ANALYZE":
                    for table in TABLES:
                        await conn.execute(sa.text(f"VACUUM ANALYZE {table}"))
                else:
                    await conn.execute(sa.text(command))
    finally:
        await engine.dispose()


TABLES = ("member.member", "member.coverage_policy", "service.service_event")


async def plan_of(conn: AsyncConnection, sql: str, p: dict[str, Any]) -> str:
    """The scans of service_event in ``sql``'s plan (``EXPLAIN``, not executed)."""
    [doc] = (await conn.execute(statement("EXPLAIN (FORMAT JSON) " + sql), p)).scalar_one()
    found: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        index = str(node.get("Index Name", ""))
        on_events = node.get("Relation Name") == "service_event"
        if "Scan" in node["Node Type"] and (on_events or "service_event" in index):
            found.append(f"{node['Node Type']} {index}".strip())
        for child in node.get("Plans", []):
            walk(child)

    walk(doc["Plan"])
    return ", ".join(found)


async def measure_queries(database_url: str, options: Options) -> dict[str, Any]:
    engine = create_engine(database_url, pool_size=1, app_name="bench")
    times: dict[str, list[float]] = {name: [] for name in QUERIES}
    counts: dict[str, list[int]] = {name: [] for name in QUERIES}
    plans: dict[str, str] = {}
    try:
        async with engine.connect() as conn:
            spans = windows(options.warmup + options.repeats)
            for i, window in enumerate(spans):
                for name, (sql, facility, payers) in QUERIES.items():
                    p = params(window, facility, payers)
                    started = time.perf_counter()
                    count = (await conn.execute(statement(sql), p)).scalar_one()
                    took = time.perf_counter() - started
                    if i >= options.warmup:
                        times[name].append(took)
                        counts[name].append(int(count))
                await conn.rollback()
            for name, (sql, facility, payers) in QUERIES.items():
                plans[name] = await plan_of(conn, sql, params(spans[-1], facility, payers))
            await conn.rollback()
    finally:
        await engine.dispose()
    return {
        name: {
            "ms": percentiles(times[name]),
            "rows_mean": sum(counts[name]) / len(counts[name]),
            "plan": plans[name],
        }
        for name in QUERIES
    }


async def materialise(database_url: str, options: Options) -> dict[str, Any]:
    """``write_roster`` for fresh RUNNING runs over whole-tenant windows; each run is
    deleted (with its rows) after its measurement."""
    engine = create_engine(database_url, pool_size=1, app_name="bench")
    seconds: list[float] = []
    rows: list[int] = []
    try:
        for window in windows(options.materialise + 1)[1:]:
            run = SimpleNamespace(
                sweep_run_id=uuid4(),
                service_date_from=window[0],
                service_date_to=window[1],
                facility_id=None,
                payer_ids=[],
            )
            async with engine.begin() as conn:
                await conn.execute(
                    sa.text(
                        "INSERT INTO eligibility.eligibility_sweep_run (sweep_run_id, name,"
                        " trigger, status, service_date_from, service_date_to, started_at)"
                        " VALUES (:id, 'bench', 'MANUAL', 'RUNNING', :a, :b, now())"
                    ),
                    {"id": run.sweep_run_id, "a": window[0], "b": window[1]},
                )
            started = time.perf_counter()
            async with AsyncSession(engine) as session, session.begin():
                written = await roster.write_roster(session, run, at=datetime.now(UTC))
            seconds.append(time.perf_counter() - started)
            rows.append(written.rows)
            async with engine.begin() as conn:
                await conn.execute(
                    sa.text(
                        "DELETE FROM eligibility.eligibility_sweep_run WHERE sweep_run_id = :id"
                    ),
                    {"id": run.sweep_run_id},
                )
    finally:
        await engine.dispose()
    return {
        "seconds": seconds,
        "rows": rows,
        "rows_per_second": sum(rows) / sum(seconds),
        "ms": percentiles(seconds),
    }


async def measure(database_url: str, options: Options) -> dict[str, Any]:
    return {
        "queries": await measure_queries(database_url, options),
        "materialise": await materialise(database_url, options),
    }


async def run(report_dir: Path, options: Options | None = None) -> str:
    """Run the benchmark; write its report (markdown and JSON) to ``report_dir``."""
    options = options or Options()
    clock = time.perf_counter()
    async with workspace(report_dir, "sweep-roster") as ws:
        tenants = await create_tenants(
            ws.master_url, [(f"roster{i}", f"Roster {i}") for i in range(len(options.sizes))]
        )
        sizes: list[dict[str, Any]] = []
        for members, tenant in zip(options.sizes, tenants, strict=True):
            log(f"{members:,} members, {members * 12:,} events into {tenant.database_name} ...")
            loaded = await load(tenant.database_url, members)
            log(f"loaded in {loaded:.1f} s; measuring with the migrations' indexes ...")
            migrations = await measure(tenant.database_url, options)
            await maintain(
                tenant.database_url,
                [
                    f"CREATE INDEX {PLAIN} ON service.service_event (status, service_date)",
                    f"DROP INDEX service.{ROSTER_INDEX}",
                    "VACUUM ANALYZE",
                ],
            )
            log("measuring with the plain (status, service_date) index ...")
            plain = await measure(tenant.database_url, options)
            sizes.append(
                {
                    "members": members,
                    "events": members * 12,
                    "load_seconds": loaded,
                    "migrations": migrations,
                    "plain": plain,
                }
            )
        info: dict[str, Any] = {
            "started": ws.started_label,
            "machine": machine(),
            "load_average": ws.load_average,
            "software": versions("sqlalchemy", "asyncpg")
            | {"postgresql": str(await postgres_settings(ws.server_url, *PG_SETTINGS))},
            "seconds": time.perf_counter() - clock,
        }
        report = render(info, options, sizes)
        await ws.write(report, {**info, "options": asdict(options), "sizes": sizes})
        return report


def _verdict(value: float, target: float, *, at_least: bool = False) -> str:
    met = value >= target if at_least else value <= target
    return "met" if met else "**missed**"


def render(info: dict[str, Any], options: Options, sizes: list[dict[str, Any]]) -> str:
    m, s = info["machine"], info["software"]
    lines = [
        f"# Sweep roster, {info['started']}",
        "",
        machine_line(m, info["load_average"]),
        f"- **Software**: Python {s['python']}, SQLAlchemy {s['sqlalchemy']}, asyncpg "
        f"{s['asyncpg']}; PostgreSQL settings {s['postgresql']}",
        f"- **Data**: per size, N members with one policy each (2 payers; 1 in 20 ending "
        f"2026-03-31), 12 visits each over 2026 across {FACILITIES} facilities (1 in 20 "
        "CANCELLED, 1 in 20 NO_SHOW), loaded with generate_series SQL, then VACUUM ANALYZE.",
        f"- **Method**: {options.repeats} repeats (after {options.warmup} unmeasured) over "
        f"different {WINDOW_DAYS}-day windows; the queries take turns within a repeat; each is "
        "the worker's SQL wrapped in `SELECT count(*)` (no rows to the client). "
        f"Materialisation: {options.materialise} runs of `write_roster` (lock, INSERT ... "
        "SELECT, roster_at, commit), whole tenant.",
        f"- **Indexes**: *migrations* = the tree's, with `{ROSTER_INDEX}` on "
        "service.service_event (status, service_date) INCLUDE (facility_id, member_id); "
        "*plain* = that index replaced by a plain (status, service_date) one (the tree before "
        "s0006), then VACUUM ANALYZE.",
        f"- Whole run: {info['seconds']:.0f} s.",
        "",
    ]
    for size in sizes:
        lines += [
            f"## {size['events']:,} events, {size['members']:,} members "
            f"(loaded in {size['load_seconds']:.1f} s)",
            "",
            "| query | indexes | rows | p50 ms | p95 ms | p95 / baseline p95 | service_event scan |",
            "| --- | --- | ---: | ---: | ---: | ---: | --- |",
        ]
        for variant in VARIANTS:
            q = size[variant]["queries"]
            base = q["baseline count(*)"]["ms"]["p95"]
            for name, r in q.items():
                lines.append(
                    f"| {name} | {variant} | {r['rows_mean']:,.0f} | {r['ms']['p50']:.2f} | "
                    f"{r['ms']['p95']:.2f} | {r['ms']['p95'] / base:.2f} | {r['plan']} |"
                )
        lines += [
            "",
            "| materialisation | rows per run | p50 ms | p95 ms | rows/s |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for variant in VARIANTS:
            mat = size[variant]["materialise"]
            lines.append(
                f"| {variant} | {sum(mat['rows']) / len(mat['rows']):,.0f} | "
                f"{mat['ms']['p50']:.1f} | {mat['ms']['p95']:.1f} | "
                f"{mat['rows_per_second']:,.0f} |"
            )
        lines.append("")
    big = max(sizes, key=lambda x: x["events"])
    lines += [f"## Targets at {big['events']:,} events", ""]
    for variant in VARIANTS:
        q, mat = big[variant]["queries"], big[variant]["materialise"]
        first = max(q["first leg, tenant"]["ms"]["p95"], q["first leg, facility"]["ms"]["p95"])
        both = max(q[n]["ms"]["p95"] for n in q if n.startswith("both legs"))
        rate = mat["rows_per_second"]
        lines.append(
            f"- **{variant} indexes**: first leg p95 {first:.1f} ms "
            f"(≤ {TARGETS['first_leg_p95_ms']:g}: {_verdict(first, TARGETS['first_leg_p95_ms'])}); "
            f"both legs p95 {both:.1f} ms (≤ {TARGETS['both_legs_p95_ms']:g}: "
            f"{_verdict(both, TARGETS['both_legs_p95_ms'])}); {rate:,.0f} member rows/s "
            f"(≥ {TARGETS['rows_per_second']:,.0f}: "
            f"{_verdict(rate, TARGETS['rows_per_second'], at_least=True)})."
        )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.sweep_roster", description=__doc__)
    parser.add_argument(
        "--sizes",
        type=lambda text: tuple(int(n) for n in text.split(",")),
        default=Options.sizes,
        help="members per tenant, comma-separated (12 events each)",
    )
    parser.add_argument("--repeats", type=int, default=Options.repeats)
    parser.add_argument("--materialise", type=int, default=Options.materialise)
    args = parser.parse_args(argv)
    if min(args.sizes) < 1 or args.repeats < 2 or args.materialise < 1:
        parser.error("sizes >= 1, repeats >= 2, materialise >= 1")
    options = Options(sizes=args.sizes, repeats=args.repeats, materialise=args.materialise)
    print(asyncio.run(run(RESULTS, options)))


if __name__ == "__main__":
    main()
