"""Cron semantics of sweep schedules: validation and fire times in a real time zone.

This module is the one place that says when a schedule fires; the API's preview and
``next_fire_at`` and the supervisor's firings all come from ``next_fire_times``.

Croniter matches the five fields against *wall-clock* times, and we let it do only that:
it iterates naive local datetimes (no time zone, so no arithmetic across an offset
change), and this module maps each matching local time to instants itself. Croniter's
own time-zone handling (7.0, given an aware start) fires ``30 1 * * *`` twice on a
fall-back day, once per occurrence of 01:30, which is what the rules below forbid.

The rules, for a schedule in a zone with daylight-saving time:

- A matching local time that exists once fires at that instant.
- A local time that does not exist (the spring-forward gap: 02:30 in New York on the
  second Sunday of March) fires at the end of the gap, i.e. at the first instant at
  which the local clock reads that time or later: 03:00 local. Several gap times
  collapse into that one instant, and a schedule that also matches 03:00 fires there
  once.
- A local time that occurs twice (fall-back: 01:30 in New York on the first Sunday of
  November) fires once, at its first occurrence, when the hour field names hours
  (``30 1 * * *``, ``0 1,13 * * *``, ``*/15 1 * * *``): such a schedule is about a time
  of day, and the day has it once.
- When the hour field is ``*`` or ``*/n`` (every hour, every n hours) the schedule is
  an interval, and it keeps its rhythm through the repeated hour: both occurrences
  fire, as they are distinct real instants. ``*/15 * * * *`` therefore fires at every
  real quarter hour on a fall-back day (nothing skipped) and at every quarter hour the
  wall clock shows on a spring-forward day (03:00 once, just after 01:45).
  This is cron(8)'s rule (Vixie/ISC cron treat "wildcard" jobs the same way), except
  that a wildcard minute alone does not make an interval here: ``*/15 1 * * *`` is
  "during the 1 o'clock hour", which the day has once.

Both rules are one function of the local time ``L``: ``first_instant(L)`` is the first
instant at which the local clock reads ``L`` or later. It is non-decreasing in ``L``,
which is what lets ``next_fire_times`` emit instants in order without sorting an
unbounded stream.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

__all__ = [
    "FIELD_NAMES",
    "MAX_PREVIEW",
    "is_interval",
    "next_fire",
    "next_fire_times",
    "validate_cron",
    "validate_timezone",
]

FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
_FIELD_RANGES = ("0-59", "0-23", "1-31", "1-12 or JAN-DEC", "0-7 or SUN-SAT")
MAX_PREVIEW = 50

# Where iteration starts (``_start``): a local time earlier than the wall clock at
# ``after`` can still fire after it only through a fall-back no further ahead than its
# own size, and no offset change is larger than the 26 hours between -12:00 and +14:00;
# so the offsets of the next 48 hours, sampled every half hour, are enough.
_LOOKAHEAD = timedelta(hours=48)
_LOOKAHEAD_STEP = timedelta(minutes=30)


def validate_cron(expr: str) -> str:
    """``expr`` with its whitespace normalised, when it is exactly five valid fields
    (minute, hour, day of month, month, day of week) that match some date.

    Raises ``ValueError`` saying which field is wrong and why. Croniter's extensions
    that fit five fields (``L``, ``#``, month and day names) are accepted; its
    seconds/year fields, ``@`` macros and hashed ``H`` fields are not.
    """
    if not isinstance(expr, str) or not expr.strip():
        raise ValueError("is empty; give 5 fields: minute hour day-of-month month day-of-week")
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(
            f"must have exactly 5 fields (minute hour day-of-month month day-of-week), "
            f"not {len(fields)}"
        )
    for index, (name, value) in enumerate(zip(FIELD_NAMES, fields, strict=True)):
        probe = ["*"] * 5
        probe[index] = value
        try:
            croniter(" ".join(probe))
        except (CroniterError, ValueError, KeyError, IndexError, TypeError) as error:
            if "out of range" in str(error):
                raise ValueError(
                    f"{name} field {value!r} is out of range: use {_FIELD_RANGES[index]}"
                ) from None
            raise ValueError(
                f"{name} field {value!r} is not valid: use numbers in {_FIELD_RANGES[index]}, "
                "'*', lists (a,b), ranges (a-b) and steps (*/n, a-b/n)"
            ) from None
    normalised = " ".join(fields)
    try:
        croniter(normalised, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(
            f"{normalised!r} never matches a date (a day of the month that month never has, such as 30 in February)"
        ) from None
    except (CroniterBadCronError, CroniterError, ValueError):
        raise ValueError(f"{normalised!r} is not a valid cron expression") from None
    return normalised


@lru_cache(maxsize=1)
def _iana_names() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_timezone(name: str) -> str:
    """``name`` when it is an IANA time zone (``America/New_York``, ``UTC``), exactly as
    spelled in the tz database. Raises ``ValueError`` otherwise."""
    if not isinstance(name, str) or name not in _iana_names():
        raise ValueError(
            "is not an IANA time zone name (such as 'UTC', 'America/New_York' or "
            "'Europe/Berlin'; names are case-sensitive)"
        )
    try:
        _zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("is not a time zone this server knows") from None
    return name


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def is_interval(cron: str) -> bool:
    """Whether the hour field is ``*`` or ``*/n``: the schedule then fires at both
    occurrences of a repeated (fall-back) local time, see the module docstring."""
    return cron.split()[1].startswith("*")


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive local time the clock in ``zone`` shows at ``instant``."""
    return instant.astimezone(zone).replace(tzinfo=None)


def _instants(local: datetime, zone: ZoneInfo) -> tuple[datetime, datetime | None]:
    """``(first, second)`` UTC instants of the naive local time ``local``: ``first`` is
    the first instant at which the clock reads ``local`` or later; ``second`` is the
    later occurrence of a repeated local time, else None."""
    early = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    late = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if early == late:
        return early, None
    lo, hi = min(early, late), max(early, late)
    if _wall(lo, zone) == local and _wall(hi, zone) == local:
        return lo, hi  # a repeated local time: PEP 495's fold=0 is the first occurrence
    # A gap: the clock reads before ``local`` at ``lo`` and after it at ``hi``; the
    # transition in between is where it first reads ``local`` or later. tzdata's
    # transitions fall on whole seconds, so a search by seconds finds it exactly.
    low, high = 0, int((hi - lo).total_seconds())
    while low < high:
        middle = (low + high) // 2
        if _wall(lo + timedelta(seconds=middle), zone) >= local:
            high = middle
        else:
            low = middle + 1
    return lo + timedelta(seconds=low), None


def _start(after: datetime, zone: ZoneInfo) -> datetime:
    """A local time early enough that no matching local time before it can fire after
    ``after``: the wall clock at ``after``, moved back by any fall-back within reach."""
    offsets = [
        (after + _LOOKAHEAD_STEP * step).astimezone(zone).utcoffset()
        for step in range(int(_LOOKAHEAD / _LOOKAHEAD_STEP) + 1)
    ]
    return after.replace(tzinfo=None) + min(offset for offset in offsets if offset is not None)


def _iter_fires(cron: str, zone: ZoneInfo, after: datetime) -> Iterator[datetime]:
    both = is_interval(cron)
    local_times = croniter(cron, _start(after, zone))
    pending: list[datetime] = []
    last: datetime | None = None
    while True:
        local = local_times.get_next(datetime)
        first, second = _instants(local, zone)
        for instant in (first, second if both else None):
            if instant is not None and instant > after:
                heapq.heappush(pending, instant)
        # Every later local time fires at or after ``first`` (the mapping is
        # non-decreasing), so whatever is pending up to it is final and in order.
        while pending and pending[0] <= first:
            instant = heapq.heappop(pending)
            if last is None or instant > last:
                last = instant
                yield instant


def next_fire_times(cron: str, timezone: str, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times of ``cron`` in ``timezone`` strictly after
    ``after`` (an aware instant), as UTC instants, ascending and distinct.

    ``cron`` and ``timezone`` must be valid (``validate_cron``, ``validate_timezone``):
    a ``ValueError`` otherwise.
    """
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError("after must be an aware datetime")
    if count < 0:
        raise ValueError("count must not be negative")
    cron = validate_cron(cron)
    zone = _zone(validate_timezone(timezone))
    fires = _iter_fires(cron, zone, after.astimezone(UTC))
    return [next(fires) for _ in range(count)]


def next_fire(cron: str, timezone: str, after: datetime) -> datetime:
    """The first fire time of ``cron`` in ``timezone`` strictly after ``after``."""
    return next_fire_times(cron, timezone, after, 1)[0]
