"""Sweep runs through the API: ad-hoc runs by relative or absolute dates, the job handed
to arq only after the commit, Idempotency-Key, cancel, rerun, retry of the failed rows,
a schedule's run-now, the member views of the exception queue, live counts and tenant
isolation. No worker runs here, so every run created stays QUEUED."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from arq.connections import ArqRedis

from eligibility_sweeps.models import eligibility_sweep_run, sweep_run_member, sweep_schedule
from eligibility_sweeps.run.service import open_arq_pool, run_job_id, window_dates
from rcm_kit.tenancy import Tenant
from tests.conftest import TenantFactory, auth, tenant_session
from tests.eligibility_sweeps.factories import add_facility, add_member, add_payer
from tests.eligibility_sweeps.supervisor.support import drop_jobs
from tests.eligibility_sweeps.test_members_api import audit_rows

RUNS = "/api/v1/eligibility/sweeps/runs"
SCHEDULES = "/api/v1/eligibility/sweeps/schedules"
READ, WRITE = "eligibility.read", "eligibility.update"


@pytest.fixture
async def arq_pool(redis_url: str, master_url: str) -> AsyncIterator[ArqRedis]:
    """The queue sweeps-api (of this test session's master database) enqueues into."""
    pool = open_arq_pool(redis_url, master_url)
    yield pool
    await pool.aclose()


@dataclass
class Sweeps:
    """A fresh tenant with a facility and two payers, and the sweeps API."""

    tenant: Tenant
    client: httpx.AsyncClient
    pool: ArqRedis
    facility_id: UUID
    payer_ids: list[UUID]

    def body(self, **values: Any) -> dict[str, Any]:
        return {
            "name": "Nightly outpatient pre-check",
            "facility_id": str(self.facility_id),
            "payer_ids": [str(p) for p in self.payer_ids],
            **values,
        }

    async def post(self, path: str, json: Any = None, **headers: str) -> httpx.Response:
        return await self.client.post(
            path, json=json, headers={**auth(self.tenant, WRITE), **headers}
        )

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=auth(self.tenant, READ))

    async def create(self, **values: Any) -> dict[str, Any]:
        """An ad-hoc run over 2026-12-01..07 unless told otherwise."""
        dates = (
            {}
            if "window_start_days" in values
            else {"service_date_from": "2026-12-01", "service_date_to": "2026-12-07"}
        )
        response = await self.post(RUNS, self.body(**{**dates, **values}))
        assert response.status_code == 202, response.text
        run: dict[str, Any] = response.json()
        return run

    async def run(self, sweep_run_id: str) -> dict[str, Any]:
        response = await self.get(f"{RUNS}/{sweep_run_id}")
        assert response.status_code == 200, response.text
        run: dict[str, Any] = response.json()
        return run

    async def runs(self, **params: Any) -> list[dict[str, Any]]:
        """Every run of the list, page by page."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            response = await self.get(RUNS, **query)
            assert response.status_code == 200, response.text
            items += response.json()["items"]
            cursor = response.json()["next_cursor"]
            if cursor is None:
                return items

    async def members(self, sweep_run_id: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            response = await self.get(f"{RUNS}/{sweep_run_id}/members", **query)
            assert response.status_code == 200, response.text
            items += response.json()["items"]
            cursor = response.json()["next_cursor"]
            if cursor is None:
                return items

    async def add_members(self, sweep_run_id: str, *rows: tuple[str, str, str]) -> list[UUID]:
        """Member rows written straight to the run: ``(last name, status, anomaly or "")``."""
        ids = []
        async with tenant_session(self.tenant) as session:
            for number, (last_name, status, anomaly) in enumerate(rows):
                member_id = await add_member(
                    session, f"M{uuid4().hex[:10]}", last_name=last_name, first_name="Ana"
                )
                await session.execute(
                    sa.insert(sweep_run_member).values(
                        sweep_run_id=sweep_run_id,
                        member_id=member_id,
                        service_date=date(2026, 12, 1) + timedelta(days=number % 7),
                        status=status,
                        failure_reason={
                            "FAILED": "Timeout after 20 s",
                            "SKIPPED": "No active coverage on the service date",
                        }.get(status),
                        coverage_status="ACTIVE" if status == "RECEIVED" else None,
                        anomalies=[anomaly] if anomaly else [],
                    )
                )
                ids.append(member_id)
        return ids

    async def set_status(self, sweep_run_id: str, status: str) -> None:
        async with tenant_session(self.tenant) as session:
            await session.execute(
                sa.update(eligibility_sweep_run)
                .where(eligibility_sweep_run.c.sweep_run_id == sweep_run_id)
                .values(status=status)
            )

    async def job(self, sweep_run_id: str) -> Any | None:
        """The queued arq job of the run, or None."""
        wanted = run_job_id(self.tenant.tenant_id, UUID(sweep_run_id))
        for job in await self.pool.queued_jobs():
            if job.job_id == wanted:
                return job
        return None


async def _sweeps(
    make_tenant: TenantFactory,
    client: httpx.AsyncClient,
    pool: ArqRedis,
    timezone: str = "UTC",
) -> Sweeps:
    tenant = await make_tenant(timezone=timezone)
    async with tenant_session(tenant) as session:
        facility_id = await add_facility(session, "F1")
        payer_ids = [await add_payer(session, "P1"), await add_payer(session, "P2")]
    return Sweeps(tenant, client, pool, facility_id, payer_ids)


@pytest.fixture
async def env(
    make_tenant: TenantFactory, sweeps: httpx.AsyncClient, arq_pool: ArqRedis
) -> AsyncIterator[Sweeps]:
    made = await _sweeps(make_tenant, sweeps, arq_pool)
    yield made
    await drop_jobs(arq_pool, made.tenant)


async def test_an_adhoc_run_by_dates_is_queued_and_its_job_is_in_redis(env: Sweeps) -> None:
    run = await env.create(name="Backward reconciliation")
    assert run["status"] == "QUEUED"
    assert run["trigger"] == "MANUAL"
    assert run["schedule_id"] is None
    assert run["name"] == "Backward reconciliation"
    assert run["scope"] == {
        "facility_id": str(env.facility_id),
        "service_date_from": "2026-12-01",
        "service_date_to": "2026-12-07",
        "payer_ids": [str(p) for p in env.payer_ids],
    }
    assert run["counts"] == dict.fromkeys(
        ("total", "queued", "submitted", "received", "failed", "skipped", "anomalies"), 0
    )
    assert run["created_at"].endswith("Z") or run["created_at"].endswith("+00:00")
    for field in ("scheduled_for", "started_at", "completed_at", "error", "retry_of"):
        assert run[field] is None
    assert await env.run(run["sweep_run_id"]) == run

    job = await env.job(run["sweep_run_id"])
    assert job is not None, "the sweep.run job is not in arq's queue"
    assert job.function == "sweep.run"
    assert job.args == (str(env.tenant.tenant_id), run["sweep_run_id"])
    assert job.job_id == f"sweep.run:{env.tenant.tenant_id}:{run['sweep_run_id']}"


async def test_facility_and_payers_may_be_left_out(env: Sweeps) -> None:
    response = await env.post(
        RUNS, {"name": "All", "service_date_from": "2026-12-01", "service_date_to": "2026-12-01"}
    )
    assert response.status_code == 202, response.text
    assert response.json()["scope"]["facility_id"] is None
    assert response.json()["scope"]["payer_ids"] == []


def _zone_off_utc_today() -> str:
    """A time zone whose calendar day differs from UTC's right now."""
    return "Pacific/Kiritimati" if datetime.now(UTC).hour >= 10 else "Pacific/Pago_Pago"


async def test_relative_dates_count_from_today_in_the_tenants_time_zone(
    make_tenant: TenantFactory, sweeps: httpx.AsyncClient, arq_pool: ArqRedis
) -> None:
    zone = _zone_off_utc_today()
    env = await _sweeps(make_tenant, sweeps, arq_pool, timezone=zone)
    try:
        before = datetime.now(ZoneInfo(zone)).date()
        run = await env.create(window_start_days=-14, window_end_days=0)
        after = datetime.now(ZoneInfo(zone)).date()
        assert before != datetime.now(UTC).date() or after != datetime.now(UTC).date()
        scope = run["scope"]
        assert (scope["service_date_from"], scope["service_date_to"]) in {
            ((day - timedelta(days=14)).isoformat(), day.isoformat()) for day in (before, after)
        }
        ahead = await env.create(window_start_days=0, window_end_days=7)
        assert (ahead["scope"]["service_date_from"], ahead["scope"]["service_date_to"]) in {
            (day.isoformat(), (day + timedelta(days=7)).isoformat()) for day in (before, after)
        }
    finally:
        await drop_jobs(arq_pool, env.tenant)


def test_window_dates_count_days_in_the_given_zone() -> None:
    # 03:30 UTC on 22 Nov is still 21 Nov in New York.
    at = datetime(2026, 11, 22, 3, 30, tzinfo=UTC)
    assert window_dates(0, 7, at=at, timezone="America/New_York") == (
        date(2026, 11, 21),
        date(2026, 11, 28),
    )
    assert window_dates(-14, 0, at=at, timezone="UTC") == (date(2026, 11, 8), date(2026, 11, 22))
    with pytest.raises(ValueError, match="aware"):
        window_dates(0, 1, at=datetime(2026, 11, 22), timezone="UTC")


def _locs(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return [error["loc"] for error in response.json()["errors"]]


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        (
            {"window_start_days": 0, "window_end_days": 7, "service_date_from": "2026-12-01"},
            [["window_start_days"], ["window_end_days"], ["service_date_from"]],
        ),
        (
            {},
            [
                ["window_start_days"],
                ["window_end_days"],
                ["service_date_from"],
                ["service_date_to"],
            ],
        ),
        ({"window_start_days": 0}, [["window_end_days"]]),
        ({"service_date_to": "2026-12-01"}, [["service_date_from"]]),
        ({"window_start_days": 3, "window_end_days": 1}, [["window_end_days"]]),
        ({"window_start_days": -45, "window_end_days": 46}, [["window_end_days"]]),
        (
            {"service_date_from": "2026-12-08", "service_date_to": "2026-12-01"},
            [["service_date_to"]],
        ),
        (
            {"service_date_from": "2026-01-01", "service_date_to": "2026-04-02"},
            [["service_date_to"]],
        ),
    ],
)
async def test_dates_must_be_exactly_one_valid_form(
    env: Sweeps, dates: dict[str, Any], expected: list[list[str]]
) -> None:
    assert _locs(await env.post(RUNS, env.body(**dates))) == expected
    assert await env.runs() == []


async def test_a_window_of_exactly_90_days_is_allowed(env: Sweeps) -> None:
    run = await env.create(window_start_days=-45, window_end_days=45)
    start, end = (
        date.fromisoformat(run["scope"][k]) for k in ("service_date_from", "service_date_to")
    )
    assert (end - start).days == 90


async def test_unknown_references_and_a_missing_name_are_named(env: Sweeps) -> None:
    body = env.body(
        facility_id=str(uuid4()),
        payer_ids=[str(env.payer_ids[0]), str(uuid4())],
        service_date_from="2026-12-01",
        service_date_to="2026-12-02",
    )
    response = await env.post(RUNS, body)
    assert _locs(response) == [["facility_id"], ["payer_ids", 1]]
    assert "no payer with this id" in response.json()["detail"]
    del body["name"]
    assert _locs(await env.post(RUNS, body)) == [["name"]]
    assert _locs(await env.post(RUNS, {**body, "name": "  "})) == [["name"]]
    assert await env.runs() == []


async def test_idempotency_key_replays_the_first_run_and_creates_nothing_new(env: Sweeps) -> None:
    body = env.body(service_date_from="2026-12-01", service_date_to="2026-12-03")
    first = await env.post(RUNS, body, **{"Idempotency-Key": "run-once"})
    again = await env.post(RUNS, body, **{"Idempotency-Key": "run-once"})
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    assert [run["sweep_run_id"] for run in await env.runs()] == [first.json()["sweep_run_id"]]
    other = await env.post(
        RUNS, {**body, "service_date_to": "2026-12-04"}, **{"Idempotency-Key": "run-once"}
    )
    assert _locs(other) == [["header", "Idempotency-Key"]]
    # A failed request keeps no reservation: the key works once the body is right.
    bad = await env.post(RUNS, env.body(), **{"Idempotency-Key": "fix-me"})
    assert bad.status_code == 422
    fixed = await env.post(RUNS, body, **{"Idempotency-Key": "fix-me"})
    assert fixed.status_code == 202, fixed.text
    assert len(await env.runs()) == 2


async def test_cancel_skips_queued_members_and_finishes_the_run(env: Sweeps) -> None:
    run = await env.create()
    run_id = run["sweep_run_id"]
    await env.add_members(
        run_id,
        ("Queued", "QUEUED", ""),
        ("Queued", "QUEUED", ""),
        ("Sent", "SUBMITTED", ""),
        ("Landed", "RECEIVED", "PLAN_ENDS_SOON"),
        ("Broken", "FAILED", ""),
    )
    assert (await env.run(run_id))["counts"] == {
        "total": 5,
        "queued": 2,
        "submitted": 1,
        "received": 1,
        "failed": 1,
        "skipped": 0,
        "anomalies": 1,
    }
    response = await env.post(f"{RUNS}/{run_id}/cancel")
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["completed_at"] is not None
    assert cancelled["counts"] == {
        "total": 5,
        "queued": 0,
        "submitted": 1,
        "received": 1,
        "failed": 1,
        "skipped": 2,
        "anomalies": 1,
    }
    skipped = await env.members(run_id, status="SKIPPED")
    assert [m["failure_reason"] for m in skipped] == ["Cancelled by operator"] * 2
    assert [m["status"] for m in await env.members(run_id, status="SUBMITTED")] == ["SUBMITTED"]
    assert await env.run(run_id) == cancelled

    again = await env.post(f"{RUNS}/{run_id}/cancel")
    assert again.status_code == 409, again.text
    assert again.json()["run_status"] == "CANCELLED"
    rows = await audit_rows(env.tenant, "sweep_run")
    assert [(r.action, r.entity_id) for r in rows] == [("CREATE", run_id), ("UPDATE", run_id)]
    assert rows[1].detail == {"status": "CANCELLED", "from": "QUEUED", "skipped": 2}
    assert rows[1].actor == "tester"


@pytest.mark.parametrize("status", ["COMPLETED", "CANCELLED", "FAILED"])
async def test_a_finished_run_cannot_be_cancelled(env: Sweeps, status: str) -> None:
    run = await env.create()
    await env.set_status(run["sweep_run_id"], status)
    response = await env.post(f"{RUNS}/{run['sweep_run_id']}/cancel")
    assert response.status_code == 409, response.text
    assert status in response.json()["detail"]
    assert (await env.run(run["sweep_run_id"]))["status"] == status


async def test_a_running_run_can_be_cancelled(env: Sweeps) -> None:
    run = await env.create()
    await env.set_status(run["sweep_run_id"], "RUNNING")
    response = await env.post(f"{RUNS}/{run['sweep_run_id']}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CANCELLED"


async def test_rerun_copies_the_absolute_scope(env: Sweeps) -> None:
    source = await env.create(payer_ids=[str(env.payer_ids[1])])
    await env.set_status(source["sweep_run_id"], "COMPLETED")
    response = await env.post(f"{RUNS}/{source['sweep_run_id']}/rerun")
    assert response.status_code == 202, response.text
    rerun = response.json()
    assert rerun["sweep_run_id"] != source["sweep_run_id"]
    assert rerun["scope"] == source["scope"]
    assert (rerun["trigger"], rerun["status"], rerun["name"]) == (
        "MANUAL",
        "QUEUED",
        source["name"],
    )
    assert await env.job(rerun["sweep_run_id"]) is not None
    keyed = {"Idempotency-Key": "rerun-1"}
    first = await env.post(f"{RUNS}/{source['sweep_run_id']}/rerun", **keyed)
    second = await env.post(f"{RUNS}/{source['sweep_run_id']}/rerun", **keyed)
    assert first.json() == second.json()
    assert len(await env.runs()) == 3


async def test_retry_failed_runs_only_the_failed_members(env: Sweeps) -> None:
    source = await env.create()
    source_id = source["sweep_run_id"]
    failed = await env.add_members(
        source_id,
        ("Fail", "FAILED", ""),
        ("Fine", "RECEIVED", ""),
        ("Gone", "SKIPPED", ""),
        ("Fail", "FAILED", ""),
        ("Odd", "RECEIVED", "COVERAGE_INACTIVE"),
    )
    await env.set_status(source_id, "COMPLETED")
    response = await env.post(f"{RUNS}/{source_id}/retry-failed")
    assert response.status_code == 202, response.text
    retry = response.json()
    assert (retry["trigger"], retry["status"], retry["retry_of"]) == ("RETRY", "QUEUED", source_id)
    assert retry["scope"] == source["scope"]
    assert retry["counts"]["total"] == retry["counts"]["queued"] == 2
    members = await env.members(retry["sweep_run_id"])
    assert {m["member_id"] for m in members} == {str(failed[0]), str(failed[3])}
    assert all(m["status"] == "QUEUED" and m["failure_reason"] is None for m in members)
    source_dates = {m["member_id"]: m["service_date"] for m in await env.members(source_id)}
    assert all(m["service_date"] == source_dates[m["member_id"]] for m in members)
    async with tenant_session(env.tenant) as session:
        roster_at = (
            await session.execute(
                sa.select(eligibility_sweep_run.c.roster_at).where(
                    eligibility_sweep_run.c.sweep_run_id == retry["sweep_run_id"]
                )
            )
        ).scalar()
    assert roster_at is not None
    assert await env.job(retry["sweep_run_id"]) is not None
    # The source keeps its rows; retrying it again makes another retry run.
    assert (await env.run(source_id))["counts"]["failed"] == 2


async def test_retry_failed_without_failed_members_is_409_and_creates_nothing(env: Sweeps) -> None:
    source = await env.create()
    await env.add_members(source["sweep_run_id"], ("Fine", "RECEIVED", ""), ("Gone", "SKIPPED", ""))
    response = await env.post(f"{RUNS}/{source['sweep_run_id']}/retry-failed")
    assert response.status_code == 409, response.text
    assert [run["sweep_run_id"] for run in await env.runs()] == [source["sweep_run_id"]]
    assert [r.action for r in await audit_rows(env.tenant, "sweep_run")] == ["CREATE"]


async def _add_schedule(env: Sweeps, **values: Any) -> UUID:
    async with tenant_session(env.tenant) as session:
        schedule_id: UUID = (
            await session.execute(
                sa.insert(sweep_schedule)
                .values(
                    name=values.pop("name", "Nightly outpatient pre-check"),
                    cron="0 2 * * *",
                    timezone=values.pop("timezone", "America/New_York"),
                    facility_id=env.facility_id,
                    window_start_days=values.pop("window_start_days", -1),
                    window_end_days=values.pop("window_end_days", 3),
                    payer_ids=[env.payer_ids[0]],
                    **values,
                )
                .returning(sweep_schedule.c.schedule_id)
            )
        ).scalar_one()
    return schedule_id


async def test_run_now_runs_the_schedules_scope_from_now(env: Sweeps) -> None:
    schedule_id = await _add_schedule(env, timezone="Pacific/Kiritimati")
    before = datetime.now(UTC)
    response = await env.post(f"{SCHEDULES}/{schedule_id}/run-now")
    assert response.status_code == 202, response.text
    run = response.json()
    possible = {
        tuple(d.isoformat() for d in window_dates(-1, 3, at=at, timezone="Pacific/Kiritimati"))
        for at in (before, datetime.now(UTC))
    }
    assert (run["scope"]["service_date_from"], run["scope"]["service_date_to"]) in possible
    assert run["scope"]["facility_id"] == str(env.facility_id)
    assert run["scope"]["payer_ids"] == [str(env.payer_ids[0])]
    assert (run["trigger"], run["schedule_id"], run["name"]) == (
        "MANUAL",
        str(schedule_id),
        "Nightly outpatient pre-check",
    )
    assert await env.job(run["sweep_run_id"]) is not None

    busy = await env.post(f"{SCHEDULES}/{schedule_id}/run-now")
    assert busy.status_code == 409, busy.text
    assert busy.json()["sweep_run_id"] == run["sweep_run_id"]
    await env.set_status(run["sweep_run_id"], "RUNNING")
    assert (await env.post(f"{SCHEDULES}/{schedule_id}/run-now")).status_code == 409
    await env.post(f"{RUNS}/{run['sweep_run_id']}/cancel")
    again = await env.post(f"{SCHEDULES}/{schedule_id}/run-now")
    assert again.status_code == 202, again.text
    listed = await env.runs(schedule_id=str(schedule_id))
    assert [r["sweep_run_id"] for r in listed] == [
        again.json()["sweep_run_id"],
        run["sweep_run_id"],
    ]

    unknown = await env.post(f"{SCHEDULES}/{uuid4()}/run-now")
    assert unknown.status_code == 404, unknown.text


async def test_run_now_works_on_a_paused_schedule(env: Sweeps) -> None:
    schedule_id = await _add_schedule(env, active=False, next_fire_at=None)
    assert (await env.post(f"{SCHEDULES}/{schedule_id}/run-now")).status_code == 202


async def test_member_views_and_their_order(env: Sweeps) -> None:
    run = await env.create()
    run_id = run["sweep_run_id"]
    ids = await env.add_members(
        run_id,
        ("Young", "FAILED", ""),
        ("Adams", "RECEIVED", "COVERAGE_INACTIVE"),
        ("Brown", "RECEIVED", ""),
        ("Adams", "SKIPPED", ""),
        ("Cole", "SUBMITTED", ""),
        ("Diaz", "QUEUED", ""),
        ("Brown", "RECEIVED", "OTHER_PAYER_PRIMARY"),
    )
    names = {str(member_id): i for i, member_id in enumerate(ids)}

    everyone = await env.members(run_id, limit=2)
    assert len(everyone) == 7
    keys = [(m["member_name"], m["member_id"]) for m in everyone]
    assert keys == sorted(keys)
    assert [m["member_name"] for m in everyone][:2] == ["Adams, Ana", "Adams, Ana"]
    first = everyone[0]
    assert set(first) == {
        "member_id",
        "member_name",
        "service_date",
        "status",
        "failure_reason",
        "coverage_status",
        "anomalies",
        "check_ids",
        "updated_at",
    }

    exceptions = await env.members(run_id, view="exceptions")
    assert {m["status"] for m in exceptions} == {"FAILED", "SKIPPED"}
    assert {names[m["member_id"]] for m in exceptions} == {0, 3}
    assert [m["failure_reason"] for m in exceptions if m["status"] == "FAILED"] == [
        "Timeout after 20 s"
    ]
    anomalies = await env.members(run_id, view="anomalies")
    assert {names[m["member_id"]] for m in anomalies} == {1, 6}
    assert all(m["status"] == "RECEIVED" and m["anomalies"] for m in anomalies)
    assert [
        m["status"] for m in await env.members(run_id, view="exceptions", status="SKIPPED")
    ] == ["SKIPPED"]
    assert await env.members(run_id, view="exceptions", status="RECEIVED") == []
    assert len(await env.members(run_id, status="RECEIVED")) == 3

    page = await env.get(f"{RUNS}/{run_id}/members", limit=2)
    cursor = page.json()["next_cursor"]
    mismatched = await env.get(f"{RUNS}/{run_id}/members", view="exceptions", cursor=cursor)
    assert _locs(mismatched) == [["query", "cursor"]]
    assert (await env.get(f"{RUNS}/{run_id}/members", view="nope")).status_code == 422

    reads = await audit_rows(env.tenant, "sweep_run_members")
    assert reads
    assert {r.entity_id for r in reads} == {run_id}
    assert reads[0].action == "READ"
    assert set(reads[0].detail) == {"view", "status", "returned"}


async def test_counts_always_equal_the_member_rows(env: Sweeps) -> None:
    run = await env.create()
    statuses = ["QUEUED", "SUBMITTED", "RECEIVED", "FAILED", "SKIPPED"]
    # Anomalies on rows of every status: only the RECEIVED ones count as anomalies.
    rows = [(f"N{i}", statuses[i % 5], "PLAN_CHANGED" if i % 4 == 2 else "") for i in range(23)]
    await env.add_members(run["sweep_run_id"], *rows)
    counts = (await env.run(run["sweep_run_id"]))["counts"]
    async with tenant_session(env.tenant) as session:
        by_status = dict(
            (
                await session.execute(
                    sa.text(
                        "SELECT status, count(*) FROM eligibility.sweep_run_member"
                        " WHERE sweep_run_id = :id GROUP BY status"
                    ),
                    {"id": run["sweep_run_id"]},
                )
            ).all()
        )
    assert {s: counts[s.lower()] for s in statuses} == {s: by_status.get(s, 0) for s in statuses}
    assert counts["total"] == sum(counts[s.lower()] for s in statuses) == 23
    assert counts["anomalies"] == 2  # rows 2 and 22
    listed = next(r for r in await env.runs() if r["sweep_run_id"] == run["sweep_run_id"])
    assert listed["counts"] == counts


async def test_runs_list_newest_first_filtered_and_paged(env: Sweeps) -> None:
    created = [await env.create(name=f"Run {i}") for i in range(5)]
    await env.set_status(created[1]["sweep_run_id"], "COMPLETED")
    listed = await env.runs(limit=2)
    assert [r["sweep_run_id"] for r in listed] == [r["sweep_run_id"] for r in reversed(created)]
    completed = await env.runs(status="COMPLETED")
    assert [r["sweep_run_id"] for r in completed] == [created[1]["sweep_run_id"]]
    assert await env.runs(schedule_id=str(uuid4())) == []
    page = await env.get(RUNS, limit=2)
    mismatched = await env.get(RUNS, status="QUEUED", cursor=page.json()["next_cursor"])
    assert _locs(mismatched) == [["query", "cursor"]]
    assert (await env.get(RUNS, status="DONE")).status_code == 422


async def test_another_tenants_run_and_schedule_are_404(
    env: Sweeps, make_tenant: TenantFactory, sweeps: httpx.AsyncClient, arq_pool: ArqRedis
) -> None:
    other = await _sweeps(make_tenant, sweeps, arq_pool)
    try:
        theirs = await other.create()
        await other.add_members(theirs["sweep_run_id"], ("Fail", "FAILED", ""))
        schedule_id = await _add_schedule(other)
        run_id = theirs["sweep_run_id"]
        for method, path in [
            ("GET", f"{RUNS}/{run_id}"),
            ("GET", f"{RUNS}/{run_id}/members"),
            ("POST", f"{RUNS}/{run_id}/cancel"),
            ("POST", f"{RUNS}/{run_id}/rerun"),
            ("POST", f"{RUNS}/{run_id}/retry-failed"),
            ("POST", f"{SCHEDULES}/{schedule_id}/run-now"),
        ]:
            response = await (env.get(path) if method == "GET" else env.post(path))
            assert response.status_code == 404, f"{method} {path}: {response.text}"
        assert await env.runs() == []
        assert (await other.run(run_id))["status"] == "QUEUED"
    finally:
        await drop_jobs(arq_pool, other.tenant)
