"""A run's roster: its member rows, written once, in one statement, by the database.

API.md's rule, in the two legs the product document describes:

1. ``service.service_event`` in the run's dates (and facility) whose status is not
   CANCELLED or NO_SHOW (so a past window finds COMPLETED visits), grouped by member:
   each member's earliest visit in the window is its ``service_date``
   (``ix_service_event_roster``, (status, service_date) INCLUDE (facility_id,
   member_id): an index-only scan);
2. ``member.coverage_policy`` of those members: with ``payer_ids``, only members holding a
   policy of one of those payers are on the roster at all; and a member with no policy
   active on its service date (among those payers, when given) is written SKIPPED
   ``No active coverage on the service date``, the others QUEUED.

``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` streams the rows inside PostgreSQL (the
worker never holds a roster in memory), and the unique ``(sweep_run_id, member_id)``
makes writing it twice harmless. The same transaction sets ``roster_at``: a run is never
seen with half a roster, and never COMPLETED before it has one. It holds the run's row
lock, so a cancel either comes first (the roster is not written) or waits and then skips
every QUEUED row just written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.models import MemberStatus, RunStatus, ServiceEventStatus

NO_COVERAGE = "No active coverage on the service date"
# "Not CANCELLED or NO_SHOW", spelled as the statuses that remain so that the leading
# column of ``(status, service_date)`` bounds the index scan.
VISIT_STATUSES = [
    s.value
    for s in ServiceEventStatus
    if s not in (ServiceEventStatus.CANCELLED, ServiceEventStatus.NO_SHOW)
]

_LOCK = sa.text(
    "SELECT status, roster_at FROM eligibility.eligibility_sweep_run"
    " WHERE sweep_run_id = :run_id FOR UPDATE"
)

_ROSTER = sa.text(
    """
    INSERT INTO eligibility.sweep_run_member
        (sweep_run_id, member_id, service_date, status, failure_reason, updated_at)
    SELECT :run_id, visits.member_id, visits.service_date,
           CASE WHEN covered.member_id IS NULL THEN :skipped ELSE :queued END,
           CASE WHEN covered.member_id IS NULL THEN :no_coverage END,
           :now
    FROM (
        SELECT e.member_id, min(e.service_date) AS service_date
        FROM service.service_event e
        WHERE e.service_date BETWEEN :date_from AND :date_to
          AND e.status = ANY(:visit_statuses)
          AND (CAST(:facility_id AS uuid) IS NULL OR e.facility_id = :facility_id)
        GROUP BY e.member_id
    ) AS visits
    LEFT JOIN LATERAL (
        SELECT p.member_id FROM member.coverage_policy p
        WHERE p.member_id = visits.member_id
          AND p.effective_from <= visits.service_date
          AND (p.effective_to IS NULL OR p.effective_to >= visits.service_date)
          AND (cardinality(:payer_ids) = 0 OR p.payer_id = ANY(:payer_ids))
        LIMIT 1
    ) AS covered ON true
    WHERE cardinality(:payer_ids) = 0 OR EXISTS (
        SELECT 1 FROM member.coverage_policy p
        WHERE p.member_id = visits.member_id AND p.payer_id = ANY(:payer_ids)
    )
    ON CONFLICT (sweep_run_id, member_id) DO NOTHING
    """
).bindparams(
    sa.bindparam("payer_ids", type_=ARRAY(sa.Uuid)),
    sa.bindparam("facility_id", type_=sa.Uuid),
    sa.bindparam("run_id", type_=sa.Uuid),
    sa.bindparam("visit_statuses", type_=ARRAY(sa.String)),
)

_MARK = sa.text(
    "UPDATE eligibility.eligibility_sweep_run SET roster_at = :now, updated_at = :now"
    " WHERE sweep_run_id = :run_id"
)


@dataclass(frozen=True, slots=True)
class RosterWritten:
    written: bool
    """False when there was nothing to do: the run is no longer RUNNING, or its roster
    already exists (a RETRY run's, or a second attempt's)."""
    rows: int = 0


async def write_roster(session: AsyncSession, run: Any, *, at: datetime) -> RosterWritten:
    """Write ``run``'s member rows and set its ``roster_at`` (in ``session``'s
    transaction; the caller commits). ``run`` is the run's row."""
    locked = (await session.execute(_LOCK, {"run_id": run.sweep_run_id})).first()
    if locked is None or locked.status != RunStatus.RUNNING or locked.roster_at is not None:
        return RosterWritten(written=False)
    result = await session.execute(
        _ROSTER,
        {
            "run_id": run.sweep_run_id,
            "date_from": run.service_date_from,
            "date_to": run.service_date_to,
            "facility_id": run.facility_id,
            "payer_ids": list(run.payer_ids),
            "visit_statuses": VISIT_STATUSES,
            "queued": MemberStatus.QUEUED.value,
            "skipped": MemberStatus.SKIPPED.value,
            "no_coverage": NO_COVERAGE,
            "now": at,
        },
    )
    await session.execute(_MARK, {"run_id": run.sweep_run_id, "now": at})
    return RosterWritten(written=True, rows=int(getattr(result, "rowcount", 0) or 0))
