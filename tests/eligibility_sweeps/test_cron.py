"""Cron semantics of schedules: validation naming the field, and fire times in real time
zones across daylight-saving changes (gap: end of the gap, once; repeat: once, except
interval expressions, which keep their rhythm). Pure and fast: no database."""

from __future__ import annotations

import bisect
import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from eligibility_sweeps.schedule.cron import (
    is_interval,
    next_fire,
    next_fire_times,
    validate_cron,
    validate_timezone,
)

NY = "America/New_York"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(instants: list[datetime], timezone: str) -> list[str]:
    """Instants as local ISO strings with their offset, for readable assertions."""
    zone = ZoneInfo(timezone)
    return [instant.astimezone(zone).isoformat(timespec="minutes") for instant in instants]


# Validation


@pytest.mark.parametrize(
    ("expr", "normalised"),
    [
        ("0 2 * * *", "0 2 * * *"),
        ("  0   2 * *\t* ", "0 2 * * *"),
        ("*/15 * * * *", "*/15 * * * *"),
        ("0 5 * * 1-5", "0 5 * * 1-5"),
        ("0 22 * * sun", "0 22 * * sun"),
        ("0 0 1,15 jan-jun *", "0 0 1,15 jan-jun *"),
        ("0 0 29 2 *", "0 0 29 2 *"),
        ("0 2 * * 7", "0 2 * * 7"),
    ],
)
def test_valid_expressions_are_normalised(expr: str, normalised: str) -> None:
    assert validate_cron(expr) == normalised


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "is empty"),
        ("0 2 * *", "exactly 5 fields (minute hour day-of-month month day-of-week), not 4"),
        ("0 0 2 * * *", "exactly 5 fields (minute hour day-of-month month day-of-week), not 6"),
        ("@daily", "exactly 5 fields"),
        ("60 2 * * *", "minute field '60' is out of range: use 0-59"),
        ("0 24 * * *", "hour field '24' is out of range: use 0-23"),
        ("0 2 0 * *", "day-of-month field '0' is out of range: use 1-31"),
        ("0 2 * 13 *", "month field '13' is out of range: use 1-12 or JAN-DEC"),
        ("0 2 * * 8", "day-of-week field '8' is out of range: use 0-7 or SUN-SAT"),
        ("x 2 * * *", "minute field 'x' is not valid"),
        ("*/0 2 * * *", "minute field '*/0' is not valid"),
        ("0 2 * * funday", "day-of-week field 'funday' is not valid"),
        ("H 2 * * *", "minute field 'H' is not valid"),
        ("0 2 30 2 *", "never matches a date"),
    ],
)
def test_invalid_expressions_say_which_field_and_why(expr: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:  # noqa: PT011 (the message is checked below)
        validate_cron(expr)
    assert message in str(raised.value)


def test_time_zones_are_iana_names() -> None:
    assert validate_timezone("UTC") == "UTC"
    assert validate_timezone(NY) == NY
    assert validate_timezone("Australia/Lord_Howe") == "Australia/Lord_Howe"
    for bad in ("", "Mars/Olympus", "america/new_york", "EST ", "../etc/passwd", "+05:00"):
        with pytest.raises(ValueError, match="IANA"):
            validate_timezone(bad)


def test_interval_means_an_hour_field_of_star() -> None:
    assert is_interval("*/15 * * * *")
    assert is_interval("0 */6 * * *")
    assert not is_interval("30 1 * * *")
    assert not is_interval("*/15 1 * * *")
    assert not is_interval("0 0-23 * * *")


# Fire times without daylight saving


def test_utc_fire_times_are_strictly_after_and_ascending() -> None:
    after = utc(2026, 11, 22, 2, 0)
    assert next_fire_times("0 2 * * *", "UTC", after, 3) == [
        utc(2026, 11, 23, 2),
        utc(2026, 11, 24, 2),
        utc(2026, 11, 25, 2),
    ]
    assert next_fire("0 2 * * *", "UTC", after - timedelta(microseconds=1)) == after
    assert next_fire_times("0 2 * * *", "UTC", after, 0) == []


def test_results_are_utc_whatever_the_zone_of_after() -> None:
    after = datetime(2026, 6, 1, 9, 0, tzinfo=ZoneInfo("Asia/Kolkata"))  # 03:30Z
    fires = next_fire_times("0 * * * *", "UTC", after, 2)
    assert fires == [utc(2026, 6, 1, 4), utc(2026, 6, 1, 5)]
    assert all(fire.tzinfo is UTC for fire in fires)


def test_a_zone_without_dst_is_a_fixed_offset() -> None:
    fires = next_fire_times("0 2 * * *", "Asia/Kolkata", utc(2025, 12, 31), 2)
    assert local(fires, "Asia/Kolkata") == ["2026-01-01T02:00+05:30", "2026-01-02T02:00+05:30"]
    assert fires[0] == utc(2025, 12, 31, 20, 30)


def test_naive_after_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_fire_times("0 2 * * *", "UTC", datetime(2026, 1, 1), 1)


def test_an_invalid_expression_or_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="hour field"):
        next_fire("0 25 * * *", "UTC", utc(2026, 1, 1))
    with pytest.raises(ValueError, match="IANA"):
        next_fire("0 2 * * *", "Nowhere/Else", utc(2026, 1, 1))


def test_day_of_month_or_day_of_week_as_in_cron() -> None:
    # Both restricted: either matches (cron's rule), so the 1st and every Monday.
    fires = next_fire_times("0 2 1 * mon", "UTC", utc(2026, 5, 28), 3)
    assert fires == [utc(2026, 6, 1, 2), utc(2026, 6, 8, 2), utc(2026, 6, 15, 2)]


# New York: spring forward 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z);
# fall back 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z).


def test_nightly_2am_new_york_fires_once_a_day_at_2_local() -> None:
    fires = next_fire_times("0 2 * * *", NY, utc(2026, 3, 5), 6)
    assert local(fires, NY) == [
        "2026-03-05T02:00-05:00",
        "2026-03-06T02:00-05:00",
        "2026-03-07T02:00-05:00",
        "2026-03-08T03:00-04:00",  # 02:00 does not exist: the end of the gap
        "2026-03-09T02:00-04:00",
        "2026-03-10T02:00-04:00",
    ]
    autumn = next_fire_times("0 2 * * *", NY, utc(2026, 10, 30, 12), 4)
    assert local(autumn, NY) == [
        "2026-10-31T02:00-04:00",
        "2026-11-01T02:00-05:00",  # 02:00 EDT never shows; 02:00 EST once
        "2026-11-02T02:00-05:00",
        "2026-11-03T02:00-05:00",
    ]


def test_a_time_inside_the_gap_fires_at_the_end_of_the_gap_once() -> None:
    fires = next_fire_times("30 2 * * *", NY, utc(2026, 3, 7, 12), 2)
    assert fires == [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)]
    # Several gap times and 03:00 itself collapse into one firing at 03:00.
    fires = next_fire_times("0,30 2,3 * * *", NY, utc(2026, 3, 8, 6, 0), 3)
    assert local(fires, NY) == [
        "2026-03-08T03:00-04:00",
        "2026-03-08T03:30-04:00",
        "2026-03-09T02:00-04:00",
    ]


def test_a_repeated_time_fires_once_at_its_first_occurrence() -> None:
    fires = next_fire_times("30 1 * * *", NY, utc(2026, 10, 31, 12), 3)
    assert local(fires, NY) == [
        "2026-11-01T01:30-04:00",
        "2026-11-02T01:30-05:00",
        "2026-11-03T01:30-05:00",
    ]
    assert next_fire_times("0 1 * * *", NY, utc(2026, 10, 31, 12), 2) == [
        utc(2026, 11, 1, 5),
        utc(2026, 11, 2, 6),
    ]


@pytest.mark.parametrize(
    "after",
    [utc(2026, 11, 1, 5, 45), utc(2026, 11, 1, 6, 0), utc(2026, 11, 1, 6, 10)],
    ids=["after the first 01:30", "at the second 01:00", "inside the second 01:xx"],
)
def test_the_second_occurrence_never_fires_a_day_schedule(after: datetime) -> None:
    assert next_fire("30 1 * * *", NY, after) == utc(2026, 11, 2, 6, 30)


def test_minutes_of_a_named_hour_fire_once_on_fall_back_day() -> None:
    fires = next_fire_times("*/15 1 * * *", NY, utc(2026, 11, 1, 4), 5)
    assert local(fires, NY) == [
        "2026-11-01T01:00-04:00",
        "2026-11-01T01:15-04:00",
        "2026-11-01T01:30-04:00",
        "2026-11-01T01:45-04:00",
        "2026-11-02T01:00-05:00",
    ]


def test_minutes_of_a_named_hour_in_the_gap_fire_once_at_its_end() -> None:
    fires = next_fire_times("*/15 2 * * *", NY, utc(2026, 3, 8, 5), 2)
    assert local(fires, NY) == ["2026-03-08T03:00-04:00", "2026-03-09T02:00-04:00"]


def test_every_15_minutes_across_spring_forward() -> None:
    fires = next_fire_times("*/15 * * * *", NY, utc(2026, 3, 8, 6, 20), 6)
    assert local(fires, NY) == [
        "2026-03-08T01:30-05:00",
        "2026-03-08T01:45-05:00",
        "2026-03-08T03:00-04:00",
        "2026-03-08T03:15-04:00",
        "2026-03-08T03:30-04:00",
        "2026-03-08T03:45-04:00",
    ]
    # Every real quarter hour: the gap costs nothing but wall-clock times that never show.
    assert all(b - a == timedelta(minutes=15) for a, b in itertools.pairwise(fires))


def test_every_15_minutes_across_fall_back_keeps_every_real_quarter_hour() -> None:
    fires = next_fire_times("*/15 * * * *", NY, utc(2026, 11, 1, 4, 40), 12)
    assert fires == [utc(2026, 11, 1, 4, 45) + timedelta(minutes=15 * i) for i in range(12)]
    assert local(fires, NY)[1:9] == [
        "2026-11-01T01:00-04:00",
        "2026-11-01T01:15-04:00",
        "2026-11-01T01:30-04:00",
        "2026-11-01T01:45-04:00",
        "2026-11-01T01:00-05:00",
        "2026-11-01T01:15-05:00",
        "2026-11-01T01:30-05:00",
        "2026-11-01T01:45-05:00",
    ]
    # Starting inside the repeated hour, whichever pass it is, continues from there.
    assert next_fire_times("*/15 * * * *", NY, utc(2026, 11, 1, 5, 50), 2) == [
        utc(2026, 11, 1, 6, 0),
        utc(2026, 11, 1, 6, 15),
    ]
    assert next_fire("*/15 * * * *", NY, utc(2026, 11, 1, 6, 10)) == utc(2026, 11, 1, 6, 15)


def test_a_day_of_15_minute_firings_has_the_right_count() -> None:
    spring = next_fire_times("*/15 * * * *", NY, utc(2026, 3, 8, 5) - timedelta(seconds=1), 200)
    fall = next_fire_times("*/15 * * * *", NY, utc(2026, 11, 1, 4) - timedelta(seconds=1), 200)
    on_day = {
        "spring": [f for f in spring if f.astimezone(ZoneInfo(NY)).day == 8],
        "fall": [f for f in fall if f.astimezone(ZoneInfo(NY)).day == 1],
    }
    assert len(on_day["spring"]) == 23 * 4  # a 23-hour day
    assert len(on_day["fall"]) == 25 * 4  # a 25-hour day
    for fires in (spring, fall):
        assert fires == sorted(set(fires))


def test_hourly_at_half_past_across_the_gap() -> None:
    # 02:30 does not exist: it fires at the end of the gap like any other time (API.md).
    fires = next_fire_times("30 * * * *", NY, utc(2026, 3, 8, 6), 3)
    assert local(fires, NY) == [
        "2026-03-08T01:30-05:00",
        "2026-03-08T03:00-04:00",
        "2026-03-08T03:30-04:00",
    ]


# Other zones' peculiarities


def test_half_hour_dst_of_lord_howe() -> None:
    zone = "Australia/Lord_Howe"  # 2026-10-04 02:00 -> 02:30 (+10:30 -> +11)
    fires = next_fire_times("15 2 * * *", zone, utc(2026, 10, 2), 3)
    assert local(fires, zone) == [
        "2026-10-03T02:15+10:30",
        "2026-10-04T02:30+11:00",
        "2026-10-05T02:15+11:00",
    ]
    # 2026-04-05 02:00 -> 01:30: 01:45 occurs twice and fires once, the first time.
    fires = next_fire_times("45 1 * * *", zone, utc(2026, 4, 3), 3)
    assert local(fires, zone) == [
        "2026-04-04T01:45+11:00",
        "2026-04-05T01:45+11:00",
        "2026-04-06T01:45+10:30",
    ]


def test_a_missing_midnight_fires_at_1am() -> None:
    zone = "America/Sao_Paulo"  # 2018-11-04 00:00 -> 01:00
    fires = next_fire_times("0 0 * * *", zone, utc(2018, 11, 2, 12), 3)
    assert local(fires, zone) == [
        "2018-11-03T00:00-03:00",
        "2018-11-04T01:00-02:00",
        "2018-11-05T00:00-02:00",
    ]


def test_a_repeat_that_crosses_midnight_fires_the_evening_once() -> None:
    zone = "America/Sao_Paulo"  # 2018-02-18 00:00 -> 2018-02-17 23:00 again
    fires = next_fire_times("45 23 * * *", zone, utc(2018, 2, 16, 12), 3)
    assert local(fires, zone) == [
        "2018-02-16T23:45-02:00",
        "2018-02-17T23:45-02:00",
        "2018-02-18T23:45-03:00",
    ]


def test_a_skipped_calendar_day() -> None:
    zone = "Pacific/Apia"  # 2011-12-30 did not happen: 29th 23:59:59 -> 31st 00:00
    fires = next_fire_times("0 12 * * *", zone, utc(2011, 12, 28), 4)
    assert local(fires, zone) == [
        "2011-12-28T12:00-10:00",
        "2011-12-29T12:00-10:00",
        "2011-12-31T00:00+14:00",  # the 30th's noon, at the end of the gap
        "2011-12-31T12:00+14:00",
    ]


# Against a brute-force model of the rules, over real transitions of several zones.


def _transitions(zone: ZoneInfo, year: int) -> list[datetime]:
    found = []
    at = datetime(year, 1, 1, tzinfo=UTC)
    previous = at.astimezone(zone).utcoffset()
    while at.year == year:
        at += timedelta(hours=1)
        offset = at.astimezone(zone).utcoffset()
        if offset != previous:
            found.append(at)
        previous = offset
    return found


class _Model:
    """Minute by minute in real time, around one transition: each matching local time
    fires at the first minute the clock reads it or later; an interval expression also
    at every later minute the clock reads it exactly."""

    def __init__(self, timezone: str, after: datetime, until: datetime) -> None:
        zone = ZoneInfo(timezone)
        self.after, self.until = after, until
        start = after - timedelta(days=1)
        count = int((until - start).total_seconds() // 60) + 1440
        self.minutes = [start + timedelta(minutes=i) for i in range(count)]
        self.highest: list[datetime] = []  # the latest wall time shown so far
        self.shown: dict[datetime, list[datetime]] = {}
        for minute in self.minutes:
            wall = minute.astimezone(zone).replace(tzinfo=None)
            self.highest.append(max(wall, self.highest[-1]) if self.highest else wall)
            self.shown.setdefault(wall, []).append(minute)

    def fires(self, cron: str) -> list[datetime]:
        found: set[datetime] = set()
        matches = croniter(cron, min(self.shown) - timedelta(minutes=1))
        while (wall := matches.get_next(datetime)) <= self.highest[-1]:
            index = bisect.bisect_left(self.highest, wall)
            if index < len(self.minutes):
                found.add(self.minutes[index])
            if is_interval(cron):
                found.update(self.shown.get(wall, []))
        return sorted(f for f in found if self.after < f <= self.until)


ZONES = [
    "America/New_York",
    "Europe/London",
    "Europe/Dublin",  # negative DST in the tz database
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
]
EXPRESSIONS = ["0 2 * * *", "30 1 * * *", "*/15 * * * *", "30 * * * *", "*/20 2 * * *", "0 0 * * *"]


@pytest.mark.parametrize("timezone", ZONES)
def test_matches_the_model_across_every_transition(timezone: str) -> None:
    zone = ZoneInfo(timezone)
    year = 2018 if timezone == "America/Sao_Paulo" else 2026
    transitions = _transitions(zone, year)
    assert transitions, timezone
    for transition in transitions:
        after = transition - timedelta(hours=30)
        until = transition + timedelta(hours=30)
        model = _Model(timezone, after, until)
        for cron in EXPRESSIONS:
            expected = model.fires(cron)
            got = next_fire_times(cron, timezone, after, len(expected) + 1)
            assert got[:-1] == expected, (timezone, transition, cron)
            assert got[-1] > until
