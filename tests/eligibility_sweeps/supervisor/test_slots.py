"""The missed-slot policy on its own: which slot a late firing fires and what it records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eligibility_sweeps.supervisor.slots import SCAN_LIMIT, plan_slots

HOUR = timedelta(hours=1)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_an_on_time_firing_fires_its_slot_and_misses_nothing() -> None:
    due = utc(2026, 3, 10, 2, 0)
    plan = plan_slots("0 2 * * *", "UTC", due=due, now=due + timedelta(seconds=1), grace=HOUR)
    assert (plan.fire, plan.missed, plan.missed_count) == (due, (), 0)
    assert plan.next_fire_at == utc(2026, 3, 11, 2, 0)


def test_a_slot_older_than_the_grace_is_missed_not_fired() -> None:
    due = utc(2026, 3, 10, 2, 0)
    plan = plan_slots(
        "0 2 * * *", "UTC", due=due, now=due + HOUR + timedelta(seconds=1), grace=HOUR
    )
    assert (plan.fire, plan.missed, plan.missed_count) == (None, (due,), 1)
    assert plan.next_fire_at == utc(2026, 3, 11, 2, 0)


def test_the_grace_edge_still_fires() -> None:
    due = utc(2026, 3, 10, 2, 0)
    plan = plan_slots("0 2 * * *", "UTC", due=due, now=due + HOUR, grace=HOUR)
    assert plan.fire == due


def test_only_the_latest_missed_slot_fires_and_recording_is_bounded() -> None:
    due = utc(2026, 3, 10, 0, 0)
    now = utc(2026, 3, 10, 5, 59)
    plan = plan_slots("*/10 * * * *", "UTC", due=due, now=now, grace=HOUR, limit=3)
    assert plan.fire == utc(2026, 3, 10, 5, 50)
    assert plan.missed == (
        utc(2026, 3, 10, 5, 20),
        utc(2026, 3, 10, 5, 30),
        utc(2026, 3, 10, 5, 40),
    )
    assert plan.missed_count == 35
    assert plan.next_fire_at == utc(2026, 3, 10, 6, 0)


@pytest.mark.parametrize("grace", [HOUR, timedelta(seconds=60)])
def test_a_long_outage_of_a_dense_schedule_is_bisected_not_walked(grace: timedelta) -> None:
    due = utc(2026, 3, 1, 0, 0)
    # A week of every five minutes is more slots than are walked one by one.
    assert SCAN_LIMIT < 7 * 24 * 12
    latest = due + timedelta(days=7)
    now = latest + timedelta(minutes=2)
    plan = plan_slots("*/5 * * * *", "UTC", due=due, now=now, grace=grace)
    if grace == HOUR:
        assert plan.fire == latest
        assert plan.missed == (latest - timedelta(minutes=5),)
    else:
        assert plan.fire is None
        assert plan.missed == (latest - timedelta(minutes=5), latest)
    assert plan.missed_count is None
    assert plan.next_fire_at == latest + timedelta(minutes=5)


def test_missed_slots_follow_the_schedule_s_time_zone_across_spring_forward() -> None:
    # 02:00 in New York: 07:00Z on 7 March, 03:00 EDT = 07:00Z on the 8th (the gap), then
    # 06:00Z.
    due = utc(2026, 3, 7, 7, 0)
    now = utc(2026, 3, 9, 6, 30)
    plan = plan_slots("0 2 * * *", "America/New_York", due=due, now=now, grace=HOUR)
    assert plan.fire == utc(2026, 3, 9, 6, 0)
    assert plan.missed == (utc(2026, 3, 7, 7, 0), utc(2026, 3, 8, 7, 0))
    assert plan.next_fire_at == utc(2026, 3, 10, 6, 0)
