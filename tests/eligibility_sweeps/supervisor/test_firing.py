"""Cron firing against real PostgreSQL tenants and Redis with an injected clock: one run per
firing whatever the replicas, stale memory never fires, overlaps and missed slots are
recorded, daylight-saving days fire once, and a broken tenant stops nobody else."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from redis.asyncio import Redis

from eligibility_sweeps.models import audit_event
from eligibility_sweeps.redis_names import sweep_queue
from eligibility_sweeps.run.service import run_job_id
from eligibility_sweeps.supervisor.firing import Outcome
from eligibility_sweeps.supervisor.slots import MISSED_REASON
from rcm_kit import provision
from rcm_kit.clock import FixedClock
from tests.conftest import tenant_session
from tests.eligibility_sweeps.supervisor.support import (
    Cluster,
    add_schedule,
    delete_schedule,
    job_exists,
    runs,
    schedule_row,
    set_run_status,
    skips,
    update_schedule,
)

NEW_YORK = "America/New_York"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


async def test_a_due_schedule_fires_one_queued_scheduled_run_and_its_job_is_in_redis(
    cluster: Cluster, redis: Redis
) -> None:
    tenant = await cluster.tenant(timezone=NEW_YORK)
    # 22:00 in New York on 10 March is 02:00 UTC on the 11th: the window counts from
    # the 10th, the schedule's calendar day, not UTC's.
    start = utc(2026, 3, 11, 1, 0)
    schedule_id = await add_schedule(tenant, "0 22 * * *", NEW_YORK, after=start, window=(0, 7))
    due = utc(2026, 3, 11, 2, 0)
    clock = FixedClock(start)
    supervisor = cluster.supervisor(clock)

    first = await supervisor.tick()
    assert (first.due, first.fired) == (0, 0)
    assert supervisor.armed.get(tenant.tenant_id, schedule_id) == due

    clock.instant = due + timedelta(seconds=0.4)
    report = await supervisor.tick()
    clock.advance(timedelta(minutes=1))
    later = await supervisor.tick()

    assert (report.fired, later.due, later.fired) == (1, 0, 0)
    [run] = await runs(tenant, schedule_id)
    assert report.runs == [(tenant.tenant_id, run.sweep_run_id)]
    assert (run.status, run.trigger, run.name) == ("QUEUED", "SCHEDULED", "Nightly pre-check")
    assert run.scheduled_for == due
    assert (run.service_date_from, run.service_date_to) == (date(2026, 3, 10), date(2026, 3, 17))
    assert run.facility_id is None
    assert run.payer_ids == []
    schedule = await schedule_row(tenant, schedule_id)
    assert schedule.next_fire_at == utc(2026, 3, 12, 2, 0)
    assert schedule.last_fired_at == due
    assert supervisor.armed.get(tenant.tenant_id, schedule_id) == schedule.next_fire_at
    assert await job_exists(redis, tenant, run.sweep_run_id), "the sweep.run job is not in Redis"
    # In this deployment's queue (named after its master database), where its workers look.
    job_ids = [m.decode() for m in await redis.zrange(sweep_queue(cluster.master_url), 0, -1)]
    assert run_job_id(tenant.tenant_id, run.sweep_run_id) in job_ids
    async with tenant_session(tenant) as session:
        actors = (
            await session.execute(
                sa.select(audit_event.c.actor).where(
                    audit_event.c.entity_id == str(run.sweep_run_id)
                )
            )
        ).scalars()
        assert list(actors) == ["sweeps-supervisor"]
    assert await skips(tenant, schedule_id) == []


async def test_two_supervisors_ticking_together_make_one_run_per_firing(
    cluster: Cluster,
) -> None:
    tenant = await cluster.tenant()
    start = utc(2026, 3, 10, 8, 59)
    schedule_ids = [
        await add_schedule(tenant, "0 * * * *", after=start, name=f"Hourly {n}") for n in range(6)
    ]
    clock = FixedClock(start)
    replicas = [cluster.supervisor(clock), cluster.supervisor(clock)]
    for replica in replicas:
        await replica.tick()  # both hold every schedule, due at 09:00

    reports = []
    clock.instant = utc(2026, 3, 10, 9, 0, 1)
    for _ in range(3):  # a replica that found a row locked looks again at its next tick
        reports += await asyncio.gather(*(replica.tick() for replica in replicas))
        clock.advance(timedelta(seconds=1))

    made = await runs(tenant)
    assert sorted(run.schedule_id for run in made) == sorted(schedule_ids)
    assert {run.scheduled_for for run in made} == {utc(2026, 3, 10, 9, 0)}
    assert sum(report.fired for report in reports) == 6
    for replica in replicas:
        for schedule_id in schedule_ids:
            assert replica.armed.get(tenant.tenant_id, schedule_id) == utc(2026, 3, 10, 10, 0)


async def test_a_schedule_paused_deleted_or_edited_after_load_never_fires_stale(
    cluster: Cluster,
) -> None:
    tenant = await cluster.tenant()
    start = utc(2026, 3, 10, 1, 0)
    paused = await add_schedule(tenant, "0 2 * * *", after=start, name="Paused")
    deleted = await add_schedule(tenant, "0 2 * * *", after=start, name="Deleted")
    edited = await add_schedule(tenant, "0 2 * * *", after=start, name="Edited", window=(0, 7))
    clock = FixedClock(start)
    supervisor = cluster.supervisor(clock)
    await supervisor.tick()
    assert supervisor.armed.total == 3

    # Changed behind the supervisor's back (no change signal): its memory is stale.
    await update_schedule(tenant, paused, active=False, next_fire_at=None)
    await delete_schedule(tenant, deleted)
    # An edit of the cron moves next_fire_at (as the API does) and the window changes.
    await update_schedule(
        tenant,
        edited,
        cron="30 4 * * *",
        next_fire_at=utc(2026, 3, 10, 4, 30),
        window_start_days=-3,
        window_end_days=0,
    )
    clock.instant = utc(2026, 3, 10, 2, 0, 5)
    stale = await supervisor.tick()

    assert stale.due == 3
    assert stale.fired == 0
    assert await runs(tenant) == []
    assert supervisor.armed.get(tenant.tenant_id, paused) is None
    assert supervisor.armed.get(tenant.tenant_id, deleted) is None
    assert supervisor.armed.get(tenant.tenant_id, edited) == utc(2026, 3, 10, 4, 30)
    assert await skips(tenant, edited) == []

    clock.instant = utc(2026, 3, 10, 4, 30, 2)
    assert (await supervisor.tick()).fired == 1
    [run] = await runs(tenant)
    assert run.schedule_id == edited
    assert run.scheduled_for == utc(2026, 3, 10, 4, 30)
    assert (run.service_date_from, run.service_date_to) == (date(2026, 3, 7), date(2026, 3, 10))
    assert (await schedule_row(tenant, edited)).next_fire_at == utc(2026, 3, 11, 4, 30)


async def test_a_firing_while_the_previous_run_is_live_is_skipped_and_recorded(
    cluster: Cluster,
) -> None:
    tenant = await cluster.tenant()
    start = utc(2026, 3, 10, 8, 30)
    schedule_id = await add_schedule(tenant, "0 * * * *", after=start)
    clock = FixedClock(start)
    supervisor = cluster.supervisor(clock)
    await supervisor.tick()

    clock.instant = utc(2026, 3, 10, 9, 0, 1)
    assert (await supervisor.tick()).fired == 1
    [first] = await runs(tenant, schedule_id)

    clock.instant = utc(2026, 3, 10, 10, 0, 1)  # the 09:00 run is still QUEUED
    queued = await supervisor.tick()
    await set_run_status(tenant, "RUNNING", first.sweep_run_id)
    clock.instant = utc(2026, 3, 10, 11, 0, 1)  # now RUNNING
    running = await supervisor.tick()
    await set_run_status(tenant, "COMPLETED", first.sweep_run_id)
    clock.instant = utc(2026, 3, 10, 12, 0, 1)  # finished: the next firing runs
    finished = await supervisor.tick()

    assert [r.outcomes[Outcome.OVERLAP] for r in (queued, running, finished)] == [1, 1, 0]
    assert [r.fired for r in (queued, running, finished)] == [0, 0, 1]
    made = await runs(tenant, schedule_id)
    assert [r.scheduled_for for r in made] == [utc(2026, 3, 10, 9, 0), utc(2026, 3, 10, 12, 0)]
    recorded = await skips(tenant, schedule_id)
    assert [(s.scheduled_for, s.reason) for s in recorded] == [
        (
            utc(2026, 3, 10, 10, 0),
            f"previous run {first.sweep_run_id} of this schedule was still QUEUED",
        ),
        (
            utc(2026, 3, 10, 11, 0),
            f"previous run {first.sweep_run_id} of this schedule was still RUNNING",
        ),
    ]
    schedule = await schedule_row(tenant, schedule_id)
    assert schedule.next_fire_at == utc(2026, 3, 10, 13, 0)
    assert schedule.last_fired_at == utc(2026, 3, 10, 12, 0)


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        pytest.param(
            utc(2026, 3, 6, 12, 0),
            # 02:00 EST = 07:00Z; on 8 March 02:00 does not exist: 03:00 EDT = 07:00Z;
            # then 02:00 EDT = 06:00Z.
            [utc(2026, 3, 7, 7), utc(2026, 3, 8, 7), utc(2026, 3, 9, 6), utc(2026, 3, 10, 6)],
            id="spring-forward",
        ),
        pytest.param(
            utc(2026, 10, 30, 12, 0),
            # 02:00 EDT = 06:00Z; on 1 November 02:00 comes once, after the repeated
            # hour: 02:00 EST = 07:00Z.
            [utc(2026, 10, 31, 6), utc(2026, 11, 1, 7), utc(2026, 11, 2, 7), utc(2026, 11, 3, 7)],
            id="fall-back",
        ),
    ],
)
async def test_two_am_in_new_york_fires_once_a_day_across_a_dst_change(
    cluster: Cluster, start: datetime, expected: list[datetime]
) -> None:
    tenant = await cluster.tenant(timezone=NEW_YORK)
    schedule_id = await add_schedule(tenant, "0 2 * * *", NEW_YORK, after=start, window=(0, 0))
    clock = FixedClock(start)
    supervisor = cluster.supervisor(clock)

    fired_at = []
    while clock.instant < start + timedelta(days=4):
        report = await supervisor.tick()
        if report.fired:
            fired_at.append(clock.instant)
            await set_run_status(tenant, "COMPLETED")  # the worker's part
        clock.advance(timedelta(minutes=15))

    made = await runs(tenant, schedule_id)
    assert [run.scheduled_for for run in made] == expected
    assert fired_at == expected, "each fired at its instant, not a tick later"
    zone = ZoneInfo(NEW_YORK)
    for run in made:
        local_day = run.scheduled_for.astimezone(zone).date()
        assert (run.service_date_from, run.service_date_to) == (local_day, local_day)
    assert await skips(tenant, schedule_id) == []


async def test_after_downtime_the_latest_missed_slot_fires_once_and_the_rest_are_recorded(
    cluster: Cluster,
) -> None:
    tenant = await cluster.tenant()
    hourly = await add_schedule(tenant, "0 * * * *", next_fire_at=utc(2026, 3, 10, 8, 0))
    # Daily at 02:00, down since the 7th: today's 02:00 is three hours old, beyond the
    # one-hour grace, so nothing fires.
    daily = await add_schedule(tenant, "0 2 * * *", next_fire_at=utc(2026, 3, 7, 2, 0))
    clock = FixedClock(utc(2026, 3, 10, 11, 20))
    supervisor = cluster.supervisor(clock, SWEEP_MISSED_FIRE_GRACE_SECONDS=3600)

    report = await supervisor.tick()
    clock.advance(timedelta(minutes=1))
    again = await supervisor.tick()

    assert (report.fired, report.missed, again.due) == (1, 7, 0)
    [run] = await runs(tenant)
    assert (run.schedule_id, run.scheduled_for) == (hourly, utc(2026, 3, 10, 11, 0))
    hourly_skips = await skips(tenant, hourly)
    assert [(s.scheduled_for.hour, s.reason) for s in hourly_skips] == [
        (8, MISSED_REASON),
        (9, MISSED_REASON),
        (10, MISSED_REASON),
    ]
    assert [s.scheduled_for for s in await skips(tenant, daily)] == [
        utc(2026, 3, day, 2, 0) for day in (7, 8, 9, 10)
    ]
    hourly_row, daily_row = await schedule_row(tenant, hourly), await schedule_row(tenant, daily)
    assert (hourly_row.next_fire_at, hourly_row.last_fired_at) == (
        utc(2026, 3, 10, 12, 0),
        utc(2026, 3, 10, 11, 0),
    )
    assert (daily_row.next_fire_at, daily_row.last_fired_at) == (utc(2026, 3, 11, 2, 0), None)


async def test_a_broken_tenant_does_not_stop_another_tenants_firing(cluster: Cluster) -> None:
    broken, healthy = await cluster.tenant(), await cluster.tenant()
    start = utc(2026, 3, 10, 1, 0)
    schedules = {t.tenant_id: await add_schedule(t, after=start) for t in (broken, healthy)}
    clock = FixedClock(start)
    supervisor = cluster.supervisor(clock)
    await supervisor.tick()
    assert supervisor.armed.total == 2
    await provision.drop_databases(cluster.server_url, broken.database_name)

    clock.instant = utc(2026, 3, 10, 2, 0, 1)
    report = await supervisor.tick()
    failed_resync = await supervisor.resync()

    assert (report.due, report.fired, report.tenants_failed) == (2, 1, 1)
    [run] = await runs(healthy)
    assert run.schedule_id == schedules[healthy.tenant_id]
    assert failed_resync == 1
    # The broken tenant's schedule is looked at again later, not every tick.
    assert supervisor.armed.get(broken.tenant_id, schedules[broken.tenant_id]) is not None
    assert (await supervisor.tick()).due == 0
