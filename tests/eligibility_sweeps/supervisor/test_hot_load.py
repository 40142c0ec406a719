"""The running supervisor beside the sweeps API: schedules created, edited, paused, resumed
and deleted through the API are hot-loaded within seconds (the change channel, not the
resync), and ``SWEEP_SCHEDULER_ENABLED=false`` fires nothing and says so."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import httpx
from redis.asyncio import Redis

from eligibility_sweeps.schedule import heartbeat
from rcm_kit.clock import FixedClock
from rcm_kit.tenancy import Tenant
from tests.conftest import auth
from tests.eligibility_sweeps.supervisor.support import (
    Cluster,
    add_schedule,
    runs,
    set_run_status,
)

SCHEDULES = "/api/v1/eligibility/sweeps/schedules"
SCHEDULER = "/api/v1/eligibility/sweeps/scheduler"
WRITE = "eligibility.read,eligibility.update"
NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T]], wanted: Any, *, within: float = 3.0) -> T:
    """``probe()`` once it answers ``wanted``; fails after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value == wanted:
            return value
        assert time.monotonic() < deadline, f"still {value!r}, wanted {wanted!r}"
        await asyncio.sleep(0.02)


async def test_schedule_changes_through_the_api_are_armed_within_seconds_without_a_restart(
    cluster: Cluster,
) -> None:
    tenant = await cluster.tenant()
    clock = FixedClock(NOON + timedelta(minutes=10))
    server = await cluster.api(clock)
    # A resync an hour away: only the change channel can arm what the API does.
    supervisor = cluster.supervisor(
        clock, SWEEP_SCHEDULER_TICK_SECONDS=0.1, SWEEP_SCHEDULER_RESYNC_SECONDS=3600
    )
    loop = asyncio.create_task(supervisor.run())
    headers = auth(tenant, WRITE)
    try:
        await asyncio.wait_for(supervisor.listening.wait(), timeout=5)

        async def last_tick() -> datetime | None:
            return supervisor.last_tick_at

        await eventually(last_tick, clock.now())

        def held(schedule_id: UUID) -> Callable[[], Awaitable[datetime | None]]:
            async def probe() -> datetime | None:
                return supervisor.armed.get(tenant.tenant_id, schedule_id)

            return probe

        async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
            created = await api.post(
                SCHEDULES,
                json={
                    "name": "Hourly",
                    "cron": "0 * * * *",
                    "window_start_days": 0,
                    "window_end_days": 3,
                },
                headers=headers,
            )
            assert created.status_code == 201, created.text
            schedule_id = UUID(created.json()["schedule_id"])
            one_pm = NOON + timedelta(hours=1)
            await eventually(held(schedule_id), one_pm)

            clock.instant = one_pm + timedelta(seconds=1)  # due: the running loop fires it
            await eventually(lambda: _count_runs(tenant, schedule_id), 1)
            [run] = await runs(tenant, schedule_id)
            assert (run.trigger, run.scheduled_for) == ("SCHEDULED", one_pm)
            await eventually(held(schedule_id), one_pm + timedelta(hours=1))

            edited = await api.patch(
                f"{SCHEDULES}/{schedule_id}", json={"cron": "30 18 * * *"}, headers=headers
            )
            assert edited.status_code == 200, edited.text
            await eventually(held(schedule_id), datetime(2026, 3, 10, 18, 30, tzinfo=UTC))

            paused = await api.post(f"{SCHEDULES}/{schedule_id}/pause", headers=headers)
            assert paused.status_code == 200, paused.text
            await eventually(held(schedule_id), None)

            resumed = await api.post(f"{SCHEDULES}/{schedule_id}/resume", headers=headers)
            assert resumed.status_code == 200, resumed.text
            await eventually(held(schedule_id), datetime(2026, 3, 10, 18, 30, tzinfo=UTC))

            deleted = await api.delete(f"{SCHEDULES}/{schedule_id}", headers=headers)
            assert deleted.status_code == 204, deleted.text
            await eventually(held(schedule_id), None)
    finally:
        supervisor.stop()
        await asyncio.wait_for(loop, timeout=5)


async def _count_runs(tenant: Tenant, schedule_id: UUID) -> int:
    return len(await runs(tenant, schedule_id))


async def test_a_disabled_supervisor_fires_nothing_and_the_status_route_says_so(
    cluster: Cluster, redis: Redis
) -> None:
    tenant = await cluster.tenant()
    schedule_id = await add_schedule(tenant, "0 * * * *", next_fire_at=NOON)
    clock = FixedClock(NOON + timedelta(seconds=30))
    server = await cluster.api(clock)
    headers = auth(tenant, WRITE)

    async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
        disabled = cluster.supervisor(clock, SWEEP_SCHEDULER_ENABLED=False)
        report = await disabled.tick()
        status = (await api.get(SCHEDULER, headers=headers)).json()
        beat = await heartbeat.read_heartbeat(
            redis, database_url=cluster.master_url, tenant_id=tenant.tenant_id
        )
        # Manual runs keep working.
        run_now = await api.post(f"{SCHEDULES}/{schedule_id}/run-now", headers=headers)

        assert (report.due, report.fired) == (0, 0)
        assert disabled.health()[0] is True
        assert beat == heartbeat.Heartbeat(
            enabled=False, last_tick_at=clock.now(), armed_schedules=0
        )
        assert status == {
            "enabled": False,
            "running": True,
            "last_tick_at": "2026-03-10T12:00:30Z",
            "armed_schedules": 0,
        }
        assert run_now.status_code == 202, run_now.text
        assert [r.trigger for r in await runs(tenant, schedule_id)] == ["MANUAL"]

        # The same schedule with the scheduler enabled: armed, and the route says so.
        await set_run_status(tenant, "COMPLETED")
        enabled = cluster.supervisor(clock)
        assert (await enabled.tick()).fired == 1
        status = (await api.get(SCHEDULER, headers=headers)).json()
        assert (status["enabled"], status["running"], status["armed_schedules"]) == (True, True, 1)
