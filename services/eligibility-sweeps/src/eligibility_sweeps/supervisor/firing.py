"""One schedule's firing: a transaction on the tenant's database that the database decides.

The steps, in one transaction (the caller's unit of work commits it):

1. Lock the schedule row (``SKIP LOCKED``: if an edit or another supervisor holds it,
   look again next tick). Gone, paused, or not due yet by the *stored* ``next_fire_at``
   → nothing fires; the caller re-arms from what the row says. The supervisor's memory
   only says when to look, never what to fire.
2. Plan the slots (``slots.plan_slots``): the slot that fires, the missed ones, the next
   fire time after ``now``.
3. The compare-and-set ``UPDATE sweep_schedule SET next_fire_at = :next, last_fired_at =
   :fired WHERE schedule_id = :id AND active AND next_fire_at = :due``. No row → nothing
   fires (a second supervisor, a pause or an edit got there first).
4. The run: if the schedule's previous run is still QUEUED or RUNNING, no run, and the
   slot is recorded as skipped (saying which run); otherwise ``create_run`` with trigger
   SCHEDULED, ``scheduled_for`` = the slot and the window resolved to absolute dates in
   the schedule's time zone from the slot. ``uq_eligibility_sweep_run_firing`` backs the
   compare-and-set: a second run of one firing cannot be inserted.
5. Missed slots are recorded in ``sweep_firing_skip``.

The job is enqueued by the caller after the commit, never here.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.models import RunTrigger
from eligibility_sweeps.run.service import create_run, window_dates
from eligibility_sweeps.supervisor import repository
from eligibility_sweeps.supervisor.slots import MISSED_REASON, plan_slots
from rcm_kit.errors import ServiceError
from rcm_kit.logging import get_logger

log = get_logger(__name__)

ACTOR = "sweeps-supervisor"


class Outcome(enum.StrEnum):
    RUN = "run"  # a run was created
    OVERLAP = "overlap"  # the previous run was still live: skipped
    MISSED = "missed"  # every due slot was too old: skipped
    INVALID = "invalid"  # the run could not be created (e.g. a reference is gone): skipped
    NOT_DUE = "not_due"  # paused, deleted, moved on, or due later than memory thought
    BUSY = "busy"  # the row is locked by someone else: look again next tick


@dataclass(frozen=True)
class Firing:
    outcome: Outcome
    # What the supervisor should hold for this schedule afterwards: the next fire time,
    # or None to disarm it (paused or gone).
    next_fire_at: datetime | None
    sweep_run_id: UUID | None = None
    scheduled_for: datetime | None = None
    missed: int = 0  # missed slots recorded (bounded)
    missed_count: int | None = 0  # every missed slot, None when more than were counted


def overlap_reason(sweep_run_id: UUID, status: str) -> str:
    return f"previous run {sweep_run_id} of this schedule was still {status}"


async def fire_schedule(
    session: AsyncSession, schedule_id: UUID, *, now: datetime, grace: timedelta
) -> Firing:
    """Fire the schedule if the database says it is due at ``now`` (see the module
    docstring); flushes only."""
    row = await repository.lock_for_firing(session, schedule_id)
    if row is None:
        # Gone, or locked by an edit or another supervisor: a plain read tells which.
        current = await repository.next_fire_at(session, schedule_id)
        return Firing(Outcome.BUSY if current is not None else Outcome.NOT_DUE, current)
    if not row.active or row.next_fire_at is None:
        return Firing(Outcome.NOT_DUE, None)
    due: datetime = row.next_fire_at
    if due > now:
        return Firing(Outcome.NOT_DUE, due)

    # Walking missed slots after a long outage is CPU work: keep the loop responsive.
    plan = await asyncio.to_thread(
        plan_slots, row.cron, row.timezone, due=due, now=now, grace=grace
    )
    if not await repository.advance_schedule(
        session, schedule_id, due=due, next_fire=plan.next_fire_at, fired=plan.fire
    ):
        current = await repository.next_fire_at(session, schedule_id)
        return Firing(Outcome.NOT_DUE, current)

    skips = [(slot, MISSED_REASON) for slot in plan.missed]
    outcome, sweep_run_id = Outcome.MISSED, None
    if plan.fire is not None:
        live = await repository.live_run_of_schedule(session, schedule_id)
        if live is not None:
            outcome = Outcome.OVERLAP
            skips.append((plan.fire, overlap_reason(live.sweep_run_id, live.status)))
        else:
            date_from, date_to = window_dates(
                row.window_start_days, row.window_end_days, at=plan.fire, timezone=row.timezone
            )
            try:
                sweep_run_id = await create_run(
                    session,
                    name=row.name,
                    trigger=RunTrigger.SCHEDULED,
                    facility_id=row.facility_id,
                    service_date_from=date_from,
                    service_date_to=date_to,
                    payer_ids=list(row.payer_ids),
                    schedule_id=schedule_id,
                    scheduled_for=plan.fire,
                    at=now,
                    actor=ACTOR,
                )
                outcome = Outcome.RUN
            except ServiceError as error:
                # Raised by validation before any insert, so the transaction is intact:
                # the firing is recorded as skipped instead of being retried every tick.
                outcome = Outcome.INVALID
                skips.append((plan.fire, f"the run could not be created: {error.detail}"))
    await repository.record_skips(session, schedule_id, skips, at=now)
    log.info(
        "supervisor.schedule_fired",
        schedule_id=str(schedule_id),
        outcome=outcome.value,
        due=due.isoformat(),
        scheduled_for=plan.fire.isoformat() if plan.fire else None,
        sweep_run_id=str(sweep_run_id) if sweep_run_id else None,
        missed=plan.missed_count if plan.missed_count is not None else f">{len(plan.missed)}",
        next_fire_at=plan.next_fire_at.isoformat(),
    )
    return Firing(
        outcome,
        plan.next_fire_at,
        sweep_run_id=sweep_run_id,
        scheduled_for=plan.fire,
        missed=len(plan.missed),
        missed_count=plan.missed_count,
    )
