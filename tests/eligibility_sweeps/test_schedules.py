"""Sweep schedules: CRUD, 422s naming the field and the rule, pause and resume,
``next_fire_at`` in real time zones, the cron help routes, the scheduler's status from
the supervisor's heartbeat, audit rows, and the change signal published after commit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import sqlalchemy as sa
from redis.asyncio import Redis

from eligibility_sweeps.models import eligibility_sweep_run
from eligibility_sweeps.schedule import heartbeat
from eligibility_sweeps.schedule.cron import validate_cron
from eligibility_sweeps.schedule.signals import change_channel, parse_change
from rcm_kit.clock import FixedClock
from rcm_kit.tenancy import Tenant
from tests.conftest import RunningServer, TenantFactory, auth, service_env, tenant_session
from tests.eligibility_sweeps.factories import add_facility, add_payer
from tests.eligibility_sweeps.test_members_api import audit_rows

BASE = "/api/v1/eligibility/sweeps"
SCHEDULES = f"{BASE}/schedules"
READ, WRITE = "eligibility.read", "eligibility.update"
NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(NOON)


@pytest.fixture(scope="module")
async def clocked_server(
    master_url: str, redis_url: str, clock: FixedClock
) -> AsyncIterator[RunningServer]:
    """The sweeps API on a clock the tests set."""
    from eligibility_sweeps.app import create_app
    from eligibility_sweeps.config import Settings

    settings = Settings(**service_env(master_url, redis_url))
    server = await RunningServer(create_app(settings, clock=clock)).start()
    yield server
    await server.stop()


@pytest.fixture
async def api(clocked_server: RunningServer, clock: FixedClock) -> AsyncIterator[httpx.AsyncClient]:
    clock.instant = NOON
    async with httpx.AsyncClient(base_url=clocked_server.url, timeout=30) as client:
        yield client


@pytest.fixture
async def tenant(make_tenant: TenantFactory) -> Tenant:
    return await make_tenant()


@pytest.fixture(scope="module")
async def shared(make_tenant: TenantFactory) -> Tenant:
    """A tenant for the tests that only read, or whose writes are refused."""
    return await make_tenant()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def body(**values: Any) -> dict[str, Any]:
    return {
        "name": "Nightly outpatient pre-check",
        "cron": "0 2 * * *",
        "window_start_days": 0,
        "window_end_days": 7,
        **values,
    }


async def create(
    api: httpx.AsyncClient, tenant: Tenant, status: int = 201, **values: Any
) -> dict[str, Any]:
    response = await api.post(SCHEDULES, json=body(**values), headers=auth(tenant, WRITE))
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


def errors(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    found: list[dict[str, Any]] = response.json()["errors"]
    return found


async def test_create_read_list_patch_and_delete(api: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await create(api, tenant)
    schedule_id = created["schedule_id"]
    assert created == {
        "schedule_id": schedule_id,
        "name": "Nightly outpatient pre-check",
        "cron": "0 2 * * *",
        "timezone": "UTC",
        "facility_id": None,
        "window_start_days": 0,
        "window_end_days": 7,
        "payer_ids": [],
        "active": True,
        "next_fire_at": "2026-11-23T02:00:00Z",
        "last_fired_at": None,
        "created_at": "2026-11-22T12:00:00Z",
        "updated_at": "2026-11-22T12:00:00Z",
    }
    got = await api.get(f"{SCHEDULES}/{schedule_id}", headers=auth(tenant, READ))
    assert got.status_code == 200
    assert got.json() == created

    async with tenant_session(tenant) as session:
        facility_id = await add_facility(session, "F1")
        payers = [await add_payer(session, code) for code in ("P1", "P2")]
    other = await create(
        api,
        tenant,
        name="Backward reconciliation",
        cron="30 6 * * 1-5",
        timezone="America/Chicago",
        facility_id=str(facility_id),
        window_start_days=-14,
        window_end_days=0,
        payer_ids=[str(payers[1]), str(payers[0]), str(payers[1])],
    )
    assert other["payer_ids"] == [str(payers[1]), str(payers[0])]  # duplicates dropped
    assert other["facility_id"] == str(facility_id)
    # Monday 2026-11-23 06:30 CST (it is Sunday 06:00 in Chicago).
    assert other["next_fire_at"] == "2026-11-23T12:30:00Z"

    first = await api.get(SCHEDULES, headers=auth(tenant, READ), params={"limit": 1})
    assert [s["name"] for s in first.json()["items"]] == ["Backward reconciliation"]
    rest = await api.get(
        SCHEDULES, headers=auth(tenant, READ), params={"cursor": first.json()["next_cursor"]}
    )
    assert [s["name"] for s in rest.json()["items"]] == ["Nightly outpatient pre-check"]
    assert rest.json()["next_cursor"] is None

    patched = await api.patch(
        f"{SCHEDULES}/{schedule_id}",
        headers=auth(tenant, WRITE),
        json={"name": "  Nightly  ", "window_start_days": 1, "window_end_days": 3},
    )
    assert patched.status_code == 200, patched.text
    result = patched.json()
    assert (result["name"], result["window_start_days"], result["window_end_days"]) == (
        "Nightly",
        1,
        3,
    )
    assert result["next_fire_at"] == created["next_fire_at"]  # the cron did not change

    # A run of the schedule keeps its history when the schedule goes.
    async with tenant_session(tenant) as session:
        run_id = (
            await session.execute(
                sa.insert(eligibility_sweep_run)
                .values(
                    schedule_id=UUID(schedule_id),
                    name="Nightly",
                    trigger="SCHEDULED",
                    status="COMPLETED",
                    service_date_from=date(2026, 11, 23),
                    service_date_to=date(2026, 11, 25),
                )
                .returning(eligibility_sweep_run.c.sweep_run_id)
            )
        ).scalar_one()
    deleted = await api.delete(f"{SCHEDULES}/{schedule_id}", headers=auth(tenant, WRITE))
    assert deleted.status_code == 204
    assert deleted.content == b""
    gone = await api.get(f"{SCHEDULES}/{schedule_id}", headers=auth(tenant, READ))
    assert gone.status_code == 404
    assert gone.json()["title"] == "Sweep schedule not found"
    again = await api.delete(f"{SCHEDULES}/{schedule_id}", headers=auth(tenant, WRITE))
    assert again.status_code == 404
    async with tenant_session(tenant) as session:
        kept = await session.execute(
            sa.select(eligibility_sweep_run.c.schedule_id).where(
                eligibility_sweep_run.c.sweep_run_id == run_id
            )
        )
        assert kept.one().schedule_id is None


@pytest.mark.parametrize(
    ("values", "loc", "message"),
    [
        ({"name": ""}, ["name"], "at least 1 character"),
        ({"name": "   "}, ["name"], "at least 1 character"),
        ({"name": "x" * 121}, ["name"], "at most 120 characters"),
        ({"cron": "0 2 * *"}, ["cron"], "exactly 5 fields"),
        ({"cron": "0 2 * * * *"}, ["cron"], "exactly 5 fields"),
        ({"cron": "0 25 * * *"}, ["cron"], "hour field '25' is out of range"),
        ({"cron": "0 2 * * someday"}, ["cron"], "day-of-week field 'someday' is not valid"),
        ({"cron": "0 2 31 2 *"}, ["cron"], "never matches a date"),
        ({"timezone": "Mars/Olympus_Mons"}, ["timezone"], "IANA time zone"),
        ({"timezone": "america/new_york"}, ["timezone"], "IANA time zone"),
        (
            {"window_start_days": 5, "window_end_days": 2},
            ["window_start_days"],
            "must not be after window_end_days",
        ),
        (
            {"window_start_days": -60, "window_end_days": 31},
            ["window_end_days"],
            "at most 90 days",
        ),
        ({"facility_id": str(uuid4())}, ["facility_id"], "no facility with this id"),
        ({"payer_ids": ["not-a-uuid"]}, ["payer_ids", 0], "UUID"),
    ],
)
async def test_each_rule_is_named_with_its_field(
    api: httpx.AsyncClient,
    shared: Tenant,
    values: dict[str, Any],
    loc: list[Any],
    message: str,
) -> None:
    response = await api.post(SCHEDULES, json=body(**values), headers=auth(shared, WRITE))
    found = errors(response)
    assert [e["loc"] for e in found] == [loc], found
    assert message in found[0]["msg"], found


async def test_a_90_day_window_is_allowed(api: httpx.AsyncClient, shared: Tenant) -> None:
    created = await create(api, shared, window_start_days=-30, window_end_days=60)
    assert (created["window_start_days"], created["window_end_days"]) == (-30, 60)


async def test_unknown_payers_are_named_by_position(api: httpx.AsyncClient, tenant: Tenant) -> None:
    async with tenant_session(tenant) as session:
        known = await add_payer(session, "P1")
    response = await api.post(
        SCHEDULES,
        json=body(payer_ids=[str(known), str(uuid4()), str(uuid4())], facility_id=str(uuid4())),
        headers=auth(tenant, WRITE),
    )
    assert [e["loc"] for e in errors(response)] == [
        ["facility_id"],
        ["payer_ids", 1],
        ["payer_ids", 2],
    ]


async def test_missing_fields_and_unknown_fields_are_named(
    api: httpx.AsyncClient, shared: Tenant
) -> None:
    response = await api.post(
        SCHEDULES, json={"name": "x", "colour": "red"}, headers=auth(shared, WRITE)
    )
    locs = [e["loc"] for e in errors(response)]
    assert ["cron"] in locs
    assert ["window_start_days"] in locs
    assert ["window_end_days"] in locs
    assert ["colour"] in locs


async def test_patch_checks_the_schedule_as_it_would_be(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await create(api, tenant)  # window 0..7
    url = f"{SCHEDULES}/{created['schedule_id']}"
    headers = auth(tenant, WRITE)
    late_start = await api.patch(url, headers=headers, json={"window_start_days": 8})
    assert [e["loc"] for e in errors(late_start)] == [["window_start_days"]]
    too_wide = await api.patch(url, headers=headers, json={"window_end_days": 91})
    assert [e["loc"] for e in errors(too_wide)] == [["window_end_days"]]
    for field in ("name", "cron", "timezone", "window_start_days", "payer_ids", "active"):
        null = await api.patch(url, headers=headers, json={field: None})
        assert errors(null) == [{"loc": [field], "msg": "may not be null"}], field
    bad_cron = await api.patch(url, headers=headers, json={"cron": "every night"})
    assert [e["loc"] for e in errors(bad_cron)] == [["cron"]]
    unknown = await api.patch(url, headers=headers, json={"payer_ids": [str(uuid4())]})
    assert [e["loc"] for e in errors(unknown)] == [["payer_ids", 0]]
    # Nothing was stored by any of them.
    assert (await api.get(url, headers=auth(tenant, READ))).json() == created
    # Moving both ends together is fine; facility_id null means all facilities.
    moved = await api.patch(
        url,
        headers=headers,
        json={"window_start_days": -100, "window_end_days": -10, "facility_id": None},
    )
    assert moved.status_code == 200, moved.text


async def test_next_fire_at_follows_the_time_zone_and_the_clock(
    api: httpx.AsyncClient, tenant: Tenant, clock: FixedClock
) -> None:
    # The day before New York springs forward: 02:00 does not exist on 2026-03-08.
    clock.instant = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
    created = await create(api, tenant, timezone="America/New_York")
    assert created["next_fire_at"] == "2026-03-08T07:00:00Z"  # 03:00 EDT, the end of the gap
    url = f"{SCHEDULES}/{created['schedule_id']}"
    headers = auth(tenant, WRITE)

    clock.instant = datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    # Editing the scope keeps the pending firing (the supervisor owns it).
    scope_only = await api.patch(url, headers=headers, json={"window_end_days": 3})
    assert scope_only.json()["next_fire_at"] == "2026-03-08T07:00:00Z"
    # A new time zone recomputes from now.
    berlin = await api.patch(url, headers=headers, json={"timezone": "Europe/Berlin"})
    assert berlin.json()["next_fire_at"] == "2026-03-09T01:00:00Z"  # 02:00 CET
    # A new cron too.
    new_cron = await api.patch(url, headers=headers, json={"cron": "15 9 * * *"})
    assert new_cron.json()["next_fire_at"] == "2026-03-08T08:15:00Z"  # 09:15 CET today
    assert new_cron.json()["updated_at"] == "2026-03-08T07:30:00Z"

    # Fall back in New York: 01:30 happens twice on 2026-11-01 and fires once.
    clock.instant = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)
    fall = await create(api, tenant, timezone="America/New_York", cron="30 1 * * *")
    assert fall["next_fire_at"] == "2026-11-01T05:30:00Z"  # 01:30 EDT, the first one
    clock.instant = datetime(2026, 11, 1, 5, 45, tzinfo=UTC)
    paused = await api.post(f"{SCHEDULES}/{fall['schedule_id']}/pause", headers=headers)
    resumed = await api.post(f"{SCHEDULES}/{fall['schedule_id']}/resume", headers=headers)
    assert paused.json()["next_fire_at"] is None
    assert resumed.json()["next_fire_at"] == "2026-11-02T06:30:00Z"  # not 01:30 EST today


async def test_pause_keeps_the_configuration_and_resume_skips_missed_slots(
    api: httpx.AsyncClient, tenant: Tenant, clock: FixedClock
) -> None:
    async with tenant_session(tenant) as session:
        payer_id = await add_payer(session, "P1")
    created = await create(api, tenant, payer_ids=[str(payer_id)], cron="0 */6 * * *")
    assert created["next_fire_at"] == "2026-11-22T18:00:00Z"
    url = f"{SCHEDULES}/{created['schedule_id']}"
    headers = auth(tenant, WRITE)

    clock.instant = NOON + timedelta(hours=1)
    paused = await api.post(f"{url}/pause", headers=headers)
    assert paused.status_code == 200, paused.text
    expected = {
        **created,
        "active": False,
        "next_fire_at": None,
        "updated_at": "2026-11-22T13:00:00Z",
    }
    assert paused.json() == expected
    again = await api.post(f"{url}/pause", headers=headers)
    assert again.json() == expected  # nothing changes, not even updated_at
    # Edits while paused keep it paused.
    renamed = await api.patch(url, headers=headers, json={"name": "Renamed", "cron": "0 3 * * *"})
    assert (renamed.json()["active"], renamed.json()["next_fire_at"]) == (False, None)

    # Two days later: the missed firings are not made up, the next one is from now.
    clock.instant = NOON + timedelta(days=2, minutes=1)
    resumed = await api.post(f"{url}/resume", headers=headers)
    assert resumed.status_code == 200
    assert resumed.json()["active"] is True
    assert resumed.json()["next_fire_at"] == "2026-11-25T03:00:00Z"
    assert resumed.json()["payer_ids"] == [str(payer_id)]
    still = await api.post(f"{url}/resume", headers=headers)
    assert still.json() == resumed.json()

    # PATCH active is the same as pause and resume.
    off = await api.patch(url, headers=headers, json={"active": False})
    assert (off.json()["active"], off.json()["next_fire_at"]) == (False, None)
    on = await api.patch(url, headers=headers, json={"active": True})
    assert on.json()["next_fire_at"] == "2026-11-25T03:00:00Z"

    # Created paused: no next firing until resumed.
    dormant = await create(api, tenant, active=False)
    assert (dormant["active"], dormant["next_fire_at"]) == (False, None)


async def test_changes_are_audited_by_field_name(api: httpx.AsyncClient, tenant: Tenant) -> None:
    async with tenant_session(tenant) as session:
        payer_id = await add_payer(session, "P1")
    created = await create(api, tenant, payer_ids=[str(payer_id)])
    url = f"{SCHEDULES}/{created['schedule_id']}"
    headers = auth(tenant, WRITE, sub="scheduler-admin")
    await api.patch(url, headers=headers, json={"cron": "0 4 * * *", "name": created["name"]})
    await api.patch(url, headers=headers, json={"name": created["name"]})  # no change
    await api.post(f"{url}/pause", headers=headers)
    await api.post(f"{url}/pause", headers=headers)  # no change
    await api.post(f"{url}/resume", headers=headers)
    await api.delete(url, headers=headers)

    rows = await audit_rows(tenant, "sweep_schedule")
    assert [(r.action, r.detail["fields"]) for r in rows] == [
        (
            "CREATE",
            [
                "active",
                "cron",
                "facility_id",
                "name",
                "payer_ids",
                "timezone",
                "window_end_days",
                "window_start_days",
            ],
        ),
        ("UPDATE", ["cron"]),
        ("UPDATE", ["active"]),
        ("UPDATE", ["active"]),
        ("DELETE", []),
    ]
    assert {r.entity_id for r in rows} == {created["schedule_id"]}
    assert [r.actor for r in rows][1:] == ["scheduler-admin"] * 4
    assert all(r.request_id for r in rows)
    # Field names only: no value of the schedule in the audit trail.
    assert str(payer_id) not in json.dumps([r.detail for r in rows])
    assert "0 4 * * *" not in json.dumps([r.detail for r in rows])


async def test_another_tenants_schedule_is_not_found(
    api: httpx.AsyncClient, tenant: Tenant, make_tenant: TenantFactory
) -> None:
    other = await make_tenant()
    theirs = await create(api, other)
    url = f"{SCHEDULES}/{theirs['schedule_id']}"
    mine = auth(tenant, [READ, WRITE])
    assert (await api.get(url, headers=mine)).status_code == 404
    assert (await api.patch(url, headers=mine, json={"name": "x"})).status_code == 404
    assert (await api.post(f"{url}/pause", headers=mine)).status_code == 404
    assert (await api.post(f"{url}/resume", headers=mine)).status_code == 404
    assert (await api.delete(url, headers=mine)).status_code == 404
    listed = await api.get(SCHEDULES, headers=mine)
    assert listed.json() == {"items": [], "next_cursor": None}
    # Untouched for its owner.
    assert (await api.get(url, headers=auth(other, READ))).json() == theirs


async def test_reading_and_writing_need_their_permissions(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await create(api, tenant)
    url = f"{SCHEDULES}/{created['schedule_id']}"
    reader, writer = auth(tenant, READ), auth(tenant, WRITE)
    assert (await api.post(SCHEDULES, json=body(), headers=reader)).status_code == 403
    assert (await api.patch(url, json={"name": "x"}, headers=reader)).status_code == 403
    assert (await api.post(f"{url}/pause", headers=reader)).status_code == 403
    assert (await api.delete(url, headers=reader)).status_code == 403
    for path in (SCHEDULES, url, f"{BASE}/cron-presets", f"{BASE}/scheduler"):
        assert (await api.get(path, headers=writer)).status_code == 403, path
        assert (await api.get(path, headers=auth(tenant, "config.read"))).status_code == 403
        assert (await api.get(path, headers=reader)).status_code == 200, path
    preview = {"cron": "0 2 * * *"}
    assert (await api.post(f"{BASE}/cron-preview", json=preview, headers=writer)).status_code == 403
    assert (await api.post(f"{BASE}/cron-preview", json=preview, headers=reader)).status_code == 200
    assert (await api.get(url)).status_code == 401


# Cron help


async def test_cron_presets(api: httpx.AsyncClient, shared: Tenant) -> None:
    response = await api.get(f"{BASE}/cron-presets", headers=auth(shared, READ))
    assert response.status_code == 200
    presets = response.json()
    assert isinstance(presets, list)
    assert {"id": "nightly-2am-utc", "label": "Nightly 2 AM UTC", "cron": "0 2 * * *"} in presets
    assert len(presets) >= 5
    assert len({p["id"] for p in presets}) == len(presets)
    for preset in presets:
        assert set(preset) == {"id", "label", "cron"}
        assert validate_cron(preset["cron"]) == preset["cron"]


async def test_cron_preview_defaults_to_utc_and_five(
    api: httpx.AsyncClient, shared: Tenant
) -> None:
    response = await api.post(
        f"{BASE}/cron-preview", json={"cron": " 0  2 * * * "}, headers=auth(shared, READ)
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "cron": "0 2 * * *",
        "timezone": "UTC",
        "next_fire_times": [f"2026-11-{day}T02:00:00Z" for day in range(23, 28)],
    }


async def test_cron_preview_across_daylight_saving_changes(
    api: httpx.AsyncClient, shared: Tenant, clock: FixedClock
) -> None:
    headers = auth(shared, READ)
    clock.instant = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)
    fall = await api.post(
        f"{BASE}/cron-preview",
        json={"cron": "30 1 * * *", "timezone": "America/New_York", "count": 3},
        headers=headers,
    )
    assert fall.json()["next_fire_times"] == [
        "2026-11-01T05:30:00Z",  # 01:30 EDT; the 01:30 EST an hour later does not fire
        "2026-11-02T06:30:00Z",
        "2026-11-03T06:30:00Z",
    ]
    clock.instant = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
    spring = await api.post(
        f"{BASE}/cron-preview",
        json={"cron": "30 2 * * *", "timezone": "America/New_York", "count": 3},
        headers=headers,
    )
    assert spring.json()["next_fire_times"] == [
        "2026-03-08T07:00:00Z",  # 02:30 does not exist: 03:00 EDT
        "2026-03-09T06:30:00Z",
        "2026-03-10T06:30:00Z",
    ]
    clock.instant = datetime(2026, 11, 1, 5, 20, tzinfo=UTC)
    quarter = await api.post(
        f"{BASE}/cron-preview",
        json={"cron": "*/15 * * * *", "timezone": "America/New_York", "count": 6},
        headers=headers,
    )
    assert quarter.json()["next_fire_times"] == [
        "2026-11-01T05:30:00Z",
        "2026-11-01T05:45:00Z",
        "2026-11-01T06:00:00Z",  # 01:00 EST, the repeated hour
        "2026-11-01T06:15:00Z",
        "2026-11-01T06:30:00Z",
        "2026-11-01T06:45:00Z",
    ]
    full = await api.post(
        f"{BASE}/cron-preview", json={"cron": "* * * * *", "count": 50}, headers=headers
    )
    assert len(full.json()["next_fire_times"]) == 50


@pytest.mark.parametrize(
    ("values", "loc", "message"),
    [
        ({"cron": "0 2 * *"}, ["cron"], "exactly 5 fields"),
        ({"cron": "0 2 * * * 2026"}, ["cron"], "exactly 5 fields"),
        ({"cron": "99 2 * * *"}, ["cron"], "minute field '99' is out of range"),
        ({"cron": "0 2 * * *", "timezone": "Nowhere/Land"}, ["timezone"], "IANA time zone"),
        ({"cron": "0 2 * * *", "count": 0}, ["count"], "greater than or equal to 1"),
        ({"cron": "0 2 * * *", "count": 51}, ["count"], "less than or equal to 50"),
        ({}, ["cron"], "Field required"),
    ],
)
async def test_cron_preview_names_the_bad_field(
    api: httpx.AsyncClient,
    shared: Tenant,
    values: dict[str, Any],
    loc: list[str],
    message: str,
) -> None:
    response = await api.post(f"{BASE}/cron-preview", json=values, headers=auth(shared, READ))
    found = errors(response)
    assert [e["loc"] for e in found] == [loc]
    assert message in found[0]["msg"]


# The scheduler's status


async def test_scheduler_status_without_a_supervisor(
    api: httpx.AsyncClient, shared: Tenant, redis: Redis, master_url: str
) -> None:
    await redis.delete(heartbeat.status_key(master_url), heartbeat.armed_key(master_url))
    response = await api.get(f"{BASE}/scheduler", headers=auth(shared, READ))
    assert response.status_code == 200
    assert response.json() == {
        "enabled": False,
        "running": False,
        "last_tick_at": None,
        "armed_schedules": 0,
    }


async def test_scheduler_status_from_the_heartbeat(
    api: httpx.AsyncClient,
    tenant: Tenant,
    make_tenant: TenantFactory,
    redis: Redis,
    master_url: str,
) -> None:
    other = await make_tenant()
    at = datetime(2026, 11, 22, 11, 59, 58, tzinfo=UTC)
    armed = {tenant.tenant_id: 3, other.tenant_id: 7}
    try:
        await heartbeat.write_heartbeat(
            redis, database_url=master_url, enabled=True, armed_schedules=armed, at=at
        )
        mine = await api.get(f"{BASE}/scheduler", headers=auth(tenant, READ))
        assert mine.json() == {
            "enabled": True,
            "running": True,
            "last_tick_at": "2026-11-22T11:59:58Z",
            "armed_schedules": 3,
        }
        theirs = await api.get(f"{BASE}/scheduler", headers=auth(other, READ))
        assert theirs.json()["armed_schedules"] == 7

        # SWEEP_SCHEDULER_ENABLED=false: running, but nothing fires.
        await heartbeat.write_heartbeat(
            redis, database_url=master_url, enabled=False, armed_schedules={}, at=at
        )
        disabled = await api.get(f"{BASE}/scheduler", headers=auth(tenant, READ))
        assert disabled.json() == {
            "enabled": False,
            "running": True,
            "last_tick_at": "2026-11-22T11:59:58Z",
            "armed_schedules": 0,
        }

        # A supervisor that stops beating is reported as gone once its beat expires.
        await heartbeat.write_heartbeat(
            redis,
            database_url=master_url,
            enabled=True,
            armed_schedules=armed,
            at=at,
            ttl_seconds=0.3,
        )
        await asyncio.sleep(0.5)
        gone = await api.get(f"{BASE}/scheduler", headers=auth(tenant, READ))
        assert gone.json()["running"] is False
        assert gone.json()["enabled"] is False
    finally:
        await redis.delete(heartbeat.status_key(master_url), heartbeat.armed_key(master_url))


async def test_heartbeat_round_trip(redis: Redis) -> None:
    database_url = f"postgresql+asyncpg://u@h/hb_{uuid4().hex[:8]}"
    tenant_id = uuid4()
    assert (
        await heartbeat.read_heartbeat(redis, database_url=database_url, tenant_id=tenant_id)
        is None
    )
    at = datetime(2026, 11, 22, 2, 0, 0, tzinfo=UTC)
    await heartbeat.write_heartbeat(
        redis, database_url=database_url, enabled=True, armed_schedules={tenant_id: 2}, at=at
    )
    try:
        beat = await heartbeat.read_heartbeat(redis, database_url=database_url, tenant_id=tenant_id)
        assert beat == heartbeat.Heartbeat(enabled=True, last_tick_at=at, armed_schedules=2)
        elsewhere = await heartbeat.read_heartbeat(
            redis, database_url=database_url, tenant_id=uuid4()
        )
        assert elsewhere is not None
        assert elsewhere.armed_schedules == 0
        assert 0 < await redis.pttl(heartbeat.status_key(database_url)) <= 30_000
        assert 0 < await redis.pttl(heartbeat.armed_key(database_url)) <= 30_000
    finally:
        await redis.delete(heartbeat.status_key(database_url), heartbeat.armed_key(database_url))


# The change signal


async def _next_change(pubsub: Any, wait_seconds: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while asyncio.get_running_loop().time() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if message is not None:
            return parse_change(message["data"])
    return None


async def test_each_committed_change_is_signalled(
    api: httpx.AsyncClient, tenant: Tenant, redis: Redis, master_url: str
) -> None:
    pubsub = redis.pubsub()
    await pubsub.subscribe(change_channel(master_url))
    try:
        await pubsub.get_message(timeout=1.0)  # the subscription's confirmation
        headers = auth(tenant, WRITE)
        created = await create(api, tenant)
        schedule_id = UUID(created["schedule_id"])
        change = await _next_change(pubsub)
        assert change is not None
        assert (change.tenant_id, change.schedule_id, change.change) == (
            tenant.tenant_id,
            schedule_id,
            "created",
        )
        # By the time the signal arrives the change is committed and visible.
        async with tenant_session(tenant) as session:
            visible = await session.execute(
                sa.text("SELECT 1 FROM eligibility.sweep_schedule WHERE schedule_id = :id"),
                {"id": schedule_id},
            )
            assert visible.scalar() == 1

        url = f"{SCHEDULES}/{schedule_id}"
        await api.patch(url, headers=headers, json={"cron": "0 3 * * *"})
        assert (await _next_change(pubsub)).change == "updated"
        await api.post(f"{url}/pause", headers=headers)
        assert (await _next_change(pubsub)).change == "paused"
        await api.post(f"{url}/resume", headers=headers)
        assert (await _next_change(pubsub)).change == "resumed"

        # Refused or empty changes commit nothing and signal nothing.
        bad = await api.patch(url, headers=headers, json={"window_start_days": 30})
        assert bad.status_code == 422
        same = await api.patch(url, headers=headers, json={"cron": "0 3 * * *"})
        assert same.status_code == 200
        assert await _next_change(pubsub, wait_seconds=0.6) is None

        await api.delete(url, headers=headers)
        deleted = await _next_change(pubsub)
        assert (deleted.schedule_id, deleted.change) == (schedule_id, "deleted")
    finally:
        await pubsub.unsubscribe()
        await pubsub.aclose()  # type: ignore[no-untyped-call]


def test_parse_change_ignores_foreign_messages() -> None:
    assert parse_change(b"hello") is None
    assert parse_change(json.dumps({"tenant_id": "x"})) is None
    tenant_id, schedule_id = uuid4(), uuid4()
    payload = json.dumps(
        {"tenant_id": str(tenant_id), "schedule_id": str(schedule_id), "change": "deleted"}
    )
    parsed = parse_change(payload.encode())
    assert parsed is not None
    assert (parsed.tenant_id, parsed.schedule_id, parsed.change) == (
        tenant_id,
        schedule_id,
        "deleted",
    )
