"""Every query of the sweep worker: the run's lifecycle, claims, the plan of a batch of
members, check rows, member outcomes and stale claims.

The statements that decide something are single statements, so that concurrent workers,
a cancel and inbound 271s cannot interleave inside them:

- **Claim** (``claim_batch``): ``QUEUED → SUBMITTED`` for up to ``n`` members, only while
  the run is RUNNING, under a share lock of the run's row (``FOR SHARE``). A cancel
  takes that row ``FOR UPDATE``: it waits for claims in progress and then skips every
  member still QUEUED, or it goes first and the claim finds the run CANCELLED and claims
  nothing. ``SKIP LOCKED`` lets several lanes claim from one run without waiting on each
  other. The same statement returns what the 270s need (member, qualifying policies,
  payer, the visit's facility, the payer's previous answer) so a batch costs one round
  trip.
- **Outcome** (``refresh_members``): a member's status is computed from its checks (the
  latest per coverage, so a retry replaces the attempt before it): SUBMITTED while any is
  pending, FAILED if any failed (the first failure by policy priority gives the reason,
  verbatim), else RECEIVED with the primary coverage's status and the union of
  anomalies. Only SUBMITTED (and FAILED, for a late 271 that settles an interrupted
  send) rows change, and only when none of their checks is pending.
- **Complete** (``complete_if_done``): RUNNING → COMPLETED when the roster is written and
  no member is QUEUED or SUBMITTED. Callers run it *after* committing their own member
  updates: two workers finishing the last two members each commit first, so the later
  check sees both, and the ``status = 'RUNNING'`` condition makes a second completion,
  or a completion racing a cancel, a no-op.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.models import (
    MAX_CONTROL_NUMBER,
    CheckStatus,
    ControlNumberKind,
    RunStatus,
    control_number_sequence,
    eligibility_check,
    eligibility_sweep_run,
    trading_partner,
    trading_partner_payer,
)
from rcm_reference.models import billing_entity

run = eligibility_sweep_run
check = eligibility_check

INTERRUPTED = "Outcome unknown: 270 {trace} was interrupted"
NO_LATE_ANSWER = "Outcome unknown: no 271 for 270 {trace} within {seconds} s"


async def get_run(session: AsyncSession, sweep_run_id: UUID) -> Any | None:
    return (await session.execute(sa.select(run).where(run.c.sweep_run_id == sweep_run_id))).first()


async def start_run(session: AsyncSession, sweep_run_id: UUID, *, at: datetime) -> bool:
    """QUEUED → RUNNING with ``started_at``; False when the run was not QUEUED."""
    result = await session.execute(
        sa.update(run)
        .where(run.c.sweep_run_id == sweep_run_id, run.c.status == RunStatus.QUEUED.value)
        .values(status=RunStatus.RUNNING.value, started_at=at, updated_at=at)
        .returning(run.c.sweep_run_id)
    )
    return result.first() is not None


async def fail_run(session: AsyncSession, sweep_run_id: UUID, error: str, *, at: datetime) -> bool:
    """QUEUED or RUNNING → FAILED with ``error`` (the run itself could not proceed)."""
    result = await session.execute(
        sa.update(run)
        .where(
            run.c.sweep_run_id == sweep_run_id,
            run.c.status.in_([RunStatus.QUEUED.value, RunStatus.RUNNING.value]),
        )
        .values(status=RunStatus.FAILED.value, error=error, completed_at=at, updated_at=at)
        .returning(run.c.sweep_run_id)
    )
    return result.first() is not None


_COMPLETE = sa.text(
    """
    UPDATE eligibility.eligibility_sweep_run r
    SET status = 'COMPLETED', completed_at = :now, updated_at = :now
    WHERE r.sweep_run_id = :run_id AND r.status = 'RUNNING' AND r.roster_at IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM eligibility.sweep_run_member m
          WHERE m.sweep_run_id = :run_id AND m.status IN ('QUEUED', 'SUBMITTED')
      )
    RETURNING r.sweep_run_id
    """
)


async def complete_if_done(session: AsyncSession, sweep_run_id: UUID, *, at: datetime) -> bool:
    """RUNNING → COMPLETED when nothing is left to wait for (see the module text)."""
    result = await session.execute(_COMPLETE, {"run_id": sweep_run_id, "now": at})
    return result.first() is not None


_COUNT_LIVE = sa.text(
    """
    SELECT
      EXISTS (SELECT 1 FROM eligibility.sweep_run_member
              WHERE sweep_run_id = :run_id AND status = 'QUEUED') AS queued,
      EXISTS (SELECT 1 FROM eligibility.sweep_run_member
              WHERE sweep_run_id = :run_id AND status = 'SUBMITTED') AS submitted
    """
)


async def live_members(session: AsyncSession, sweep_run_id: UUID) -> tuple[bool, bool]:
    """Whether the run has QUEUED members, and SUBMITTED ones."""
    row = (await session.execute(_COUNT_LIVE, {"run_id": sweep_run_id})).one()
    return bool(row.queued), bool(row.submitted)


# -- claims ---------------------------------------------------------------------------

_CLAIM = sa.text(
    """
    WITH live_run AS (
        SELECT sweep_run_id FROM eligibility.eligibility_sweep_run
        WHERE sweep_run_id = :run_id AND status = 'RUNNING'
        FOR SHARE
    ), picked AS (
        SELECT m.member_id FROM eligibility.sweep_run_member m
        JOIN live_run ON live_run.sweep_run_id = m.sweep_run_id
        WHERE m.status = 'QUEUED'
        LIMIT :n
        FOR UPDATE OF m SKIP LOCKED
    ), claimed AS (
        UPDATE eligibility.sweep_run_member m
        SET status = 'SUBMITTED', claimed_at = :now, updated_at = :now
        FROM picked
        WHERE m.sweep_run_id = :run_id AND m.member_id = picked.member_id
        RETURNING m.member_id, m.service_date
    )
    SELECT c.member_id, c.service_date,
           mb.first_name, mb.last_name, mb.date_of_birth, mb.gender,
           p.coverage_policy_id, p.payer_id, p.subscriber_id, p.relationship, p.priority,
           p.subscriber_first_name, p.subscriber_last_name, p.subscriber_date_of_birth,
           py.payer_code, py.name AS payer_name,
           visit.name AS facility_name, visit.npi AS facility_npi,
           previous.identity AS previous_identity
    FROM claimed c
    JOIN member.member mb ON mb.member_id = c.member_id
    LEFT JOIN LATERAL (
        SELECT cp.* FROM member.coverage_policy cp
        WHERE cp.member_id = c.member_id
          AND cp.effective_from <= c.service_date
          AND (cp.effective_to IS NULL OR cp.effective_to >= c.service_date)
          AND (cardinality(:payer_ids) = 0 OR cp.payer_id = ANY(:payer_ids))
    ) p ON true
    LEFT JOIN ref.payer py ON py.payer_id = p.payer_id
    LEFT JOIN LATERAL (
        SELECT f.name, f.npi FROM service.service_event e
        JOIN ref.facility f ON f.facility_id = e.facility_id
        WHERE e.member_id = c.member_id AND e.service_date = c.service_date
          AND e.status NOT IN ('CANCELLED', 'NO_SHOW') AND f.npi IS NOT NULL
        ORDER BY e.created_at, e.service_event_id
        LIMIT 1
    ) visit ON true
    LEFT JOIN LATERAL (
        SELECT ec.identity FROM eligibility.eligibility_check ec
        WHERE ec.member_id = c.member_id AND ec.payer_id = p.payer_id
          AND ec.status = 'RECEIVED' AND ec.identity IS NOT NULL
        ORDER BY ec.received_at DESC, ec.check_id DESC
        LIMIT 1
    ) previous ON true
    ORDER BY c.member_id, p.priority, p.effective_from DESC, p.coverage_policy_id
    """
).bindparams(
    sa.bindparam("run_id", type_=sa.Uuid),
    sa.bindparam("payer_ids", type_=ARRAY(sa.Uuid)),
)


async def claim_batch(
    session: AsyncSession, sweep_run_id: UUID, payer_ids: list[UUID], n: int, *, at: datetime
) -> list[Any]:
    """Claim up to ``n`` QUEUED members (see the module text): one row per qualifying
    policy of each, by member and then policy priority; a member with none has one row
    whose ``coverage_policy_id`` is null. Empty when the run is not RUNNING or nothing
    is QUEUED (or every QUEUED row is being claimed by someone else)."""
    result = await session.execute(
        _CLAIM, {"run_id": sweep_run_id, "payer_ids": payer_ids, "n": n, "now": at}
    )
    return list(result.all())


async def route(session: AsyncSession, payer_id: UUID) -> Any | None:
    """The ACTIVE partner that routes ``payer_id`` with the payer's own limits (the oldest,
    as ``check.repository.route`` picks it)."""
    query = (
        sa.select(
            trading_partner,
            trading_partner_payer.c.max_requests_per_second.label("payer_max_rps"),
            trading_partner_payer.c.daily_request_cap.label("payer_daily_cap"),
        )
        .join(
            trading_partner_payer,
            trading_partner_payer.c.trading_partner_id == trading_partner.c.trading_partner_id,
        )
        .where(trading_partner_payer.c.payer_id == payer_id, trading_partner.c.active)
        .order_by(trading_partner.c.created_at, trading_partner.c.trading_partner_id)
        .limit(1)
    )
    return (await session.execute(query)).first()


async def organisation(session: AsyncSession) -> tuple[Any | None, str | None]:
    """The fallback 2100B provider (first billing entity with an NPI) and the EIN for
    TRN03 (first billing entity with a tax id), as the checks pipeline picks them."""
    provider = (
        await session.execute(
            sa.select(billing_entity.c.name, billing_entity.c.npi)
            .where(billing_entity.c.npi.is_not(None))
            .order_by(billing_entity.c.billing_entity_code)
            .limit(1)
        )
    ).first()
    ein: str | None = (
        await session.execute(
            sa.select(billing_entity.c.tax_id)
            .where(billing_entity.c.tax_id.is_not(None))
            .order_by(billing_entity.c.billing_entity_code)
            .limit(1)
        )
    ).scalar()
    return provider, ein


async def allocate_control_numbers(session: AsyncSession, trading_partner_id: UUID, n: int) -> int:
    """Reserve ``n`` consecutive control numbers of the partner in one statement; the
    first. Shares ``control_number_sequence`` with the checks pipeline (one at a time):
    a block that would pass 999,999,999 starts again at 1, as a single number wraps."""
    sequence = control_number_sequence
    statement = (
        insert(sequence)
        .values(
            trading_partner_id=trading_partner_id, kind=ControlNumberKind.INTERCHANGE, last_value=n
        )
        .on_conflict_do_update(
            index_elements=[sequence.c.trading_partner_id, sequence.c.kind],
            set_={
                "last_value": sa.case(
                    (sequence.c.last_value + n > MAX_CONTROL_NUMBER, n),
                    else_=sequence.c.last_value + n,
                ),
                "updated_at": sa.func.now(),
            },
        )
        .returning(sequence.c.last_value)
    )
    last = int((await session.execute(statement)).scalar_one())
    return last - n + 1


async def insert_checks(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Check rows with ids chosen by the caller (one multi-row INSERT)."""
    if rows:
        await session.execute(sa.insert(check), rows)


_SET_CHECK_IDS = sa.text(
    """
    UPDATE eligibility.sweep_run_member m
    SET check_ids = m.check_ids || given.check_ids, updated_at = :now
    FROM (
        SELECT u.member_id, array_agg(u.check_id) AS check_ids
        FROM unnest(:member_ids, :check_ids) AS u(member_id, check_id)
        GROUP BY u.member_id
    ) AS given
    WHERE m.sweep_run_id = :run_id AND m.member_id = given.member_id
    """
).bindparams(
    sa.bindparam("run_id", type_=sa.Uuid),
    sa.bindparam("member_ids", type_=ARRAY(sa.Uuid)),
    sa.bindparam("check_ids", type_=ARRAY(sa.Uuid)),
)


async def add_check_ids(
    session: AsyncSession, sweep_run_id: UUID, pairs: list[tuple[UUID, UUID]], *, at: datetime
) -> None:
    """Append checks to their members' ``check_ids``: ``(member_id, check_id)`` pairs."""
    if pairs:
        await session.execute(
            _SET_CHECK_IDS,
            {
                "run_id": sweep_run_id,
                "member_ids": [member_id for member_id, _ in pairs],
                "check_ids": [check_id for _, check_id in pairs],
                "now": at,
            },
        )


async def skip_members(
    session: AsyncSession, sweep_run_id: UUID, member_ids: list[UUID], reason: str, *, at: datetime
) -> None:
    """Claimed members with nothing to send become SKIPPED with ``reason``."""
    if member_ids:
        await session.execute(
            sa.text(
                "UPDATE eligibility.sweep_run_member SET status = 'SKIPPED',"
                " failure_reason = :reason, updated_at = :now"
                " WHERE sweep_run_id = :run_id AND member_id = ANY(:member_ids)"
                " AND status = 'SUBMITTED'"
            ).bindparams(
                sa.bindparam("run_id", type_=sa.Uuid),
                sa.bindparam("member_ids", type_=ARRAY(sa.Uuid)),
            ),
            {"run_id": sweep_run_id, "member_ids": member_ids, "reason": reason, "now": at},
        )


# -- settling checks ------------------------------------------------------------------

FINAL_COLUMNS = (
    "status",
    "retryable",
    "error",
    "coverage_status",
    "anomalies",
    "benefits",
    "plan",
    "rejects",
    "other_payers",
    "identity",
    "response_x12",
    "response_kind",
    "received_at",
    "elapsed_ms",
    "submitted_at",
)
AWAITING_COLUMNS = ("response_x12", "response_kind", "elapsed_ms")


def _settle_statement(columns: tuple[str, ...]) -> sa.Update:
    return (
        sa.update(check)
        .where(
            check.c.check_id == sa.bindparam("b_check_id", type_=sa.Uuid),
            check.c.status == CheckStatus.SUBMITTED.value,
        )
        .values(
            {name: sa.bindparam(f"b_{name}", type_=check.c[name].type) for name in columns}
            | {"updated_at": sa.bindparam("b_updated_at", type_=check.c.updated_at.type)}
        )
    )


_SETTLE_FINAL = _settle_statement(FINAL_COLUMNS)
_SETTLE_AWAITING = _settle_statement(AWAITING_COLUMNS)


async def settle_checks(
    session: AsyncSession, final: list[dict[str, Any]], awaiting: list[dict[str, Any]]
) -> None:
    """Apply answers to checks still SUBMITTED (an inbound file that settled one first
    wins, as in the checks pipeline). ``final`` rows carry ``check_id``, ``updated_at`` and
    every name of ``FINAL_COLUMNS``; ``awaiting`` rows (the partner took the 270 for later)
    those of ``AWAITING_COLUMNS``. Each list is one executemany."""
    for statement, rows in ((_SETTLE_FINAL, final), (_SETTLE_AWAITING, awaiting)):
        if rows:
            await session.execute(
                statement, [{f"b_{key}": value for key, value in row.items()} for row in rows]
            )


async def mark_sent(
    session: AsyncSession,
    check_id: UUID,
    *,
    control_number: int,
    request_x12: str,
    at: datetime,
) -> bool:
    """A retry's check row (inserted before its wait) gets its 270 before the send."""
    result = await session.execute(
        sa.update(check)
        .where(check.c.check_id == check_id, check.c.status == CheckStatus.SUBMITTED.value)
        .values(
            control_number=control_number, request_x12=request_x12, submitted_at=at, updated_at=at
        )
        .returning(check.c.check_id)
    )
    return result.first() is not None


# -- member outcomes ------------------------------------------------------------------

_REFRESH_CHOSEN = {
    "members": """
        SELECT m.member_id, m.check_ids FROM eligibility.sweep_run_member m
        WHERE m.sweep_run_id = :run_id AND m.member_id = ANY(:member_ids)
          AND m.status IN ('SUBMITTED', 'FAILED')""",
    "submitted": """
        SELECT m.member_id, m.check_ids FROM eligibility.sweep_run_member m
        WHERE m.sweep_run_id = :run_id AND m.status = 'SUBMITTED'""",
}
_REFRESH_REST = """
    ), latest AS (
        SELECT DISTINCT ON (ch.member_id, c.coverage_policy_id)
               ch.member_id, c.coverage_policy_id, c.status, c.error, c.coverage_status,
               c.anomalies, p.priority
        FROM chosen ch
        JOIN eligibility.eligibility_check c ON c.check_id = ANY(ch.check_ids)
        JOIN member.coverage_policy p ON p.coverage_policy_id = c.coverage_policy_id
        ORDER BY ch.member_id, c.coverage_policy_id, c.created_at DESC, c.check_id DESC
    ), outcome AS (
        SELECT l.member_id,
               bool_or(l.status = 'SUBMITTED') AS pending,
               (array_agg(l.error ORDER BY l.priority, l.coverage_policy_id)
                    FILTER (WHERE l.status = 'FAILED'))[1] AS failure,
               (array_agg(l.coverage_status ORDER BY l.priority, l.coverage_policy_id)
                    FILTER (WHERE l.status = 'RECEIVED'))[1] AS coverage_status,
               COALESCE((SELECT array_agg(DISTINCT a ORDER BY a)
                         FROM latest l2, unnest(l2.anomalies) AS a
                         WHERE l2.member_id = l.member_id AND l2.status = 'RECEIVED'),
                        '{}') AS anomalies
        FROM latest l
        GROUP BY l.member_id
    )
    UPDATE eligibility.sweep_run_member m
    SET status = CASE WHEN o.failure IS NULL THEN 'RECEIVED' ELSE 'FAILED' END,
        failure_reason = o.failure,
        coverage_status = o.coverage_status,
        anomalies = o.anomalies,
        updated_at = :now
    FROM outcome o
    WHERE m.sweep_run_id = :run_id AND m.member_id = o.member_id AND NOT o.pending
    RETURNING m.member_id, m.status
"""
_REFRESH = {
    name: sa.text(f"WITH chosen AS ({chosen}{_REFRESH_REST}").bindparams(
        sa.bindparam("run_id", type_=sa.Uuid),
        *([sa.bindparam("member_ids", type_=ARRAY(sa.Uuid))] if name == "members" else []),
    )
    for name, chosen in _REFRESH_CHOSEN.items()
}


async def refresh_members(
    session: AsyncSession, sweep_run_id: UUID, member_ids: list[UUID] | None, *, at: datetime
) -> list[Any]:
    """Set the outcome of members none of whose checks is pending (see the module text):
    ``member_ids`` (SUBMITTED or FAILED ones), or None for every SUBMITTED member of the
    run. The rows changed, ``(member_id, status)``."""
    if member_ids is not None and not member_ids:
        return []
    if member_ids is None:
        params: dict[str, Any] = {"run_id": sweep_run_id, "now": at}
        statement = _REFRESH["submitted"]
    else:
        params = {"run_id": sweep_run_id, "member_ids": member_ids, "now": at}
        statement = _REFRESH["members"]
    result = await session.execute(statement, params)
    return list(result.all())


# -- stale claims ---------------------------------------------------------------------

_STALE = sa.text(
    """
    SELECT m.member_id, c.check_id, c.trace_number, c.request_x12 IS NOT NULL AS built,
           c.elapsed_ms IS NOT NULL AS answered, m.claimed_at < :answer_cutoff AS overdue
    FROM eligibility.sweep_run_member m
    JOIN LATERAL (
        SELECT DISTINCT ON (ec.coverage_policy_id) ec.check_id, ec.status, ec.trace_number,
               ec.request_x12, ec.elapsed_ms
        FROM eligibility.eligibility_check ec
        WHERE ec.check_id = ANY(m.check_ids)
        ORDER BY ec.coverage_policy_id, ec.created_at DESC, ec.check_id DESC
    ) c ON c.status = 'SUBMITTED'
    WHERE m.sweep_run_id = :run_id AND m.status = 'SUBMITTED' AND m.claimed_at < :claim_cutoff
    ORDER BY m.member_id, c.trace_number
    LIMIT :limit
    """
).bindparams(sa.bindparam("run_id", type_=sa.Uuid))


async def expire_claims(
    session: AsyncSession,
    sweep_run_id: UUID,
    *,
    at: datetime,
    claim_cutoff: datetime,
    answer_cutoff: datetime,
    answer_timeout_seconds: int,
    limit: int = 1000,
) -> list[UUID]:
    """Members claimed before ``claim_cutoff`` whose checks are still pending belong to a
    worker that stopped mid-send (a live job never holds a claim that long):

    - a 270 built but with no reply recorded: FAILED ``Outcome unknown: 270 <trace> was
      interrupted``; it may have left, so it is never sent again;
    - a 270 the partner took for later delivery, claimed before ``answer_cutoff``: FAILED
      ``Outcome unknown: no 271 for 270 <trace> within <N> s`` (a 271 that still comes
      later settles the check, and the member with it);
    - a retry's row whose 270 was never built (the worker stopped during the wait before
      it): the row goes, the attempt before it stands, and the member gets its outcome
      from the checks it has.

    Returns the members changed. (A member is never claimed without a check: its claim
    and its check rows commit together.)"""
    rows = (
        await session.execute(
            _STALE,
            {
                "run_id": sweep_run_id,
                "claim_cutoff": claim_cutoff,
                "answer_cutoff": answer_cutoff,
                "limit": limit,
            },
        )
    ).all()
    failures: dict[UUID, str] = {}
    unbuilt: list[tuple[UUID, UUID]] = []
    for row in rows:
        if not row.built:
            unbuilt.append((row.member_id, row.check_id))
        elif not row.answered:
            failures.setdefault(row.member_id, INTERRUPTED.format(trace=row.trace_number))
        elif row.overdue:
            failures.setdefault(
                row.member_id,
                NO_LATE_ANSWER.format(trace=row.trace_number, seconds=answer_timeout_seconds),
            )
    changed: list[UUID] = []
    if unbuilt:
        await session.execute(sa.delete(check).where(check.c.check_id.in_([c for _, c in unbuilt])))
        await session.execute(
            sa.text(
                "UPDATE eligibility.sweep_run_member SET check_ids = ARRAY("
                " SELECT x FROM unnest(check_ids) AS x WHERE x <> ALL(:gone)), updated_at = :now"
                " WHERE sweep_run_id = :run_id AND member_id = ANY(:member_ids)"
            ).bindparams(
                sa.bindparam("run_id", type_=sa.Uuid),
                sa.bindparam("gone", type_=ARRAY(sa.Uuid)),
                sa.bindparam("member_ids", type_=ARRAY(sa.Uuid)),
            ),
            {
                "run_id": sweep_run_id,
                "gone": [c for _, c in unbuilt],
                "member_ids": [m for m, _ in unbuilt],
                "now": at,
            },
        )
        settled = await refresh_members(
            session, sweep_run_id, [m for m, _ in unbuilt if m not in failures], at=at
        )
        changed += [r.member_id for r in settled]
    for member_id, reason in failures.items():
        await session.execute(
            sa.text(
                "UPDATE eligibility.sweep_run_member SET status = 'FAILED',"
                " failure_reason = :reason, updated_at = :now"
                " WHERE sweep_run_id = :run_id AND member_id = :member_id AND status = 'SUBMITTED'"
            ).bindparams(
                sa.bindparam("run_id", type_=sa.Uuid), sa.bindparam("member_id", type_=sa.Uuid)
            ),
            {"run_id": sweep_run_id, "member_id": member_id, "reason": reason, "now": at},
        )
        changed.append(member_id)
    return changed
