"""Which fire time a late firing fires, and which it records as missed.

A schedule's ``next_fire_at`` (its *due* slot) can lie well in the past when the
supervisor looks at it: every supervisor was down, or the tenant's database was. The
policy, for the slots ``due <= slot <= now`` of the schedule's cron:

- the most recent of them fires, once, when it is at most ``grace`` old
  (``SWEEP_MISSED_FIRE_GRACE_SECONDS``, default one hour): a sweep fired a little late
  still looks at (nearly) the same visits, while yesterday's sweep fired today would
  double today's and sweep a window nobody asked for;
- every other one is *missed*: it makes no run and is recorded in ``sweep_firing_skip``
  with the reason ``missed while the scheduler was down``. Never a burst of runs.
- ``next_fire_at`` moves to the first slot after ``now``.

In normal operation the due slot is the only one and it is seconds old, so it fires.

Recording is bounded: the most recent ``limit`` missed slots (enough to see the outage in
the skip list); and after a long outage of a dense schedule (more than ``SCAN_LIMIT``
slots: a day of ``* * * * *``), only the most recent missed slot, found by bisection
rather than by walking every slot since the outage began.

Fire times come from ``schedule.cron`` only (``next_fire``, ``next_fire_times``), so DST
gaps and repeats are handled exactly as the preview shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from eligibility_sweeps.schedule.cron import next_fire, next_fire_times

__all__ = ["MISSED_REASON", "SCAN_LIMIT", "SlotPlan", "plan_slots"]

MISSED_REASON = "missed while the scheduler was down"
# Slots walked one by one from the due slot before switching to bisection.
SCAN_LIMIT = 1500
_BATCH = 64
# Fire times are whole minutes (or DST transitions, whole seconds): a second of
# resolution separates any two of them.
_RESOLUTION = timedelta(seconds=1)


@dataclass(frozen=True)
class SlotPlan:
    fire: datetime | None  # the slot that fires now, if any
    missed: tuple[datetime, ...]  # slots to record as missed (ascending, bounded)
    missed_count: int | None  # every missed slot; None when more than were counted
    next_fire_at: datetime  # the first slot after ``now``


def _slots_through(
    cron: str, timezone: str, due: datetime, now: datetime
) -> tuple[list[datetime], bool]:
    """``[due, ...]``: the slots up to ``now``, and whether that is all of them (False
    when more than ``SCAN_LIMIT``)."""
    slots = [due]
    while len(slots) < SCAN_LIMIT:
        for slot in next_fire_times(cron, timezone, slots[-1], _BATCH):
            if slot > now:
                return slots, True
            slots.append(slot)
    return slots[:SCAN_LIMIT], False


def _last_slot_through(cron: str, timezone: str, known: datetime, limit: datetime) -> datetime:
    """The last slot ``<= limit``, given a slot ``known <= limit``: bisection on
    ``next_fire`` (non-decreasing in its argument), a few dozen calls for years."""
    low, high = (
        known,
        limit,
    )  # next_fire(low) <= limit or low is the answer; next_fire(high) > limit
    if next_fire(cron, timezone, low) > limit:
        return known
    while high - low > _RESOLUTION:
        middle = low + (high - low) / 2
        if next_fire(cron, timezone, middle) <= limit:
            low = middle
        else:
            high = middle
    return next_fire(cron, timezone, low)


def plan_slots(
    cron: str, timezone: str, *, due: datetime, now: datetime, grace: timedelta, limit: int = 100
) -> SlotPlan:
    """The firing of a schedule whose due slot ``due`` is ``<= now`` (see the module
    docstring). ``cron`` and ``timezone`` must be valid."""
    if due > now:
        raise ValueError("due must not be after now")
    slots, complete = _slots_through(cron, timezone, due, now)
    if complete:
        latest, earlier = slots[-1], slots[:-1]
        count: int | None = len(earlier)
    else:
        latest = _last_slot_through(cron, timezone, slots[-1], now)
        earlier = [_last_slot_through(cron, timezone, slots[-1], latest - _RESOLUTION)]
        count = None
    fire = latest if now - latest <= grace else None
    missed = earlier if fire is not None else [*earlier, latest]
    if count is not None and fire is None:
        count += 1
    return SlotPlan(
        fire=fire,
        missed=tuple(missed[-limit:]) if limit > 0 else (),
        missed_count=count,
        next_fire_at=next_fire(cron, timezone, now),
    )
