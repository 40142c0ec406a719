"""One lane of a sweep: claim members in small batches, send their 270s with bounded
concurrency, and settle the answers in batches.

This is the checks pipeline (``check.pipeline``) reshaped for throughput. The rules are
the same (coverage, routing, the 2100B provider, control numbers committed before the
send, the partner's and payer's Redis limits and breaker, ``answers`` deciding what a
reply means, an answer applied only to a check still SUBMITTED); what changes is that
database work is done per batch of members instead of six short transactions per
check:

1. **Claim** (one transaction per batch): the claim statement marks up to ``free``
   members SUBMITTED and returns their policies, payers, visit facility and previous
   answers; routes come from a per-job cache; control numbers are reserved in one block
   per partner; the 270s are built and every check row is inserted with its 270 and
   recorded on its member. The commit comes before any 270 leaves, so a member is never
   sent twice, and a crash leaves checks whose 270s are on record.
2. **Send**, outside any transaction: admission by ``transport.limits``, the transport,
   ``answers`` (with the previous answer loaded in step 1, so reading a 271 needs no
   query).
3. **Settle** (one transaction per flush, while the next sends go on): the checks'
   answers (executemany), then the outcome of each member that has none pending
   (``repository.refresh_members``, computed from the check rows).

A retryable failure (timeout, HTTP 5xx/429, AAA 42/80, circuit open, no rate slot in
time) is retried up to ``SWEEP_RETRY_ATTEMPTS`` times with doubling waits, as long as
the retry can end before the job's deadline. The failed attempt is settled and the
retry's check row inserted (SUBMITTED, its 270 not built yet) in one transaction before
the wait, so the member shows pending throughout and nobody reads the failure as its
outcome; the retry gets its control number and 270 just before it is sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import httpx
from prometheus_client import Counter, Histogram

from eligibility_sweeps.check import answers
from eligibility_sweeps.check.answers import Inquiry as AskedAbout
from eligibility_sweeps.check.answers import Verdict
from eligibility_sweeps.check.pipeline import (
    CHECKS,
    ROUND_TRIP,
    CheckPipeline,
    NotSendable,
    answer_verdict,
    asked_about,
    envelope_for,
    inquiry_from,
)
from eligibility_sweeps.models import CheckStatus, MemberStatus
from eligibility_sweeps.trading_partner.control_numbers import new_trace_number
from eligibility_sweeps.transport.base import PartnerEndpoint, TransportFailure, sender_for
from eligibility_sweeps.transport.limits import CheckRefused
from eligibility_sweeps.worker import repository
from eligibility_sweeps.worker.roster import NO_COVERAGE
from eligibility_sweeps.x12.anomalies import PreviousCheck
from eligibility_sweeps.x12.build270 import Inquiry, X12BuildError, build_270
from rcm_kit.clock import Clock
from rcm_kit.logging import get_logger
from rcm_kit.tenancy import Tenant, TenantDirectory

log = get_logger(__name__)

MEMBERS = Counter(
    "sweep_members_total",
    "Sweep members this process brought to an outcome, by status",
    ["status"],
)
MEMBER_SECONDS = Histogram(
    "sweep_member_seconds",
    "From a member's claim to its outcome (its 270s, retries and settlement)",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)
FLUSH_SECONDS = Histogram(
    "sweep_settle_flush_seconds",
    "One settlement transaction of a send job",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

# A flush that fails is tried again this often before its answers are given up (the
# members then stay claimed, and the claim timeout reports them).
FLUSH_ATTEMPTS = 3


class ClientPool:
    """HTTP clients for lanes, one per lane running in this process.

    httpx's pool looks at every connection it holds on each request (and polls the idle
    ones' sockets), so one shared client of a few hundred connections costs more per
    270 the more lanes run. A lane's client holds at most its width of connections,
    stays open between the lane's windows (keep-alive) and goes back here after each.
    """

    def __init__(self, connections: int) -> None:
        self.connections = connections
        # One TLS context for all: httpx would load the CA bundle again for each client.
        self._tls = ssl.create_default_context()
        self._free: list[httpx.AsyncClient] = []
        self._all: list[httpx.AsyncClient] = []

    def take(self) -> httpx.AsyncClient:
        if self._free:
            return self._free.pop()
        client = httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=self.connections, max_keepalive_connections=self.connections
            ),
            follow_redirects=False,
            verify=self._tls,
        )
        self._all.append(client)
        return client

    def give_back(self, client: httpx.AsyncClient) -> None:
        self._free.append(client)

    async def aclose(self) -> None:
        for client in self._all:
            await client.aclose()
        self._all.clear()
        self._free.clear()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int
    base_seconds: float
    max_seconds: float

    def wait(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1-based)."""
        return float(min(self.max_seconds, self.base_seconds * 2 ** (retry - 1)))


@dataclass(frozen=True, slots=True)
class _Route:
    """A payer's partner as the lane sends to it, or why it cannot."""

    trading_partner_id: UUID | None
    partner: PartnerEndpoint | None
    name: str
    usage_indicator: str = "P"
    partner_rps: float | None = None
    payer_rps: float | None = None
    daily_cap: int | None = None
    error: str | None = None


@dataclass(slots=True)
class _Attempt:
    """One 270 of one member's coverage, ready to send."""

    check_id: UUID
    member_id: UUID
    payer_id: UUID
    coverage_policy_id: UUID
    service_date: date
    payer_label: str
    route: _Route
    inquiry: Inquiry
    asked: AskedAbout
    previous: PreviousCheck | None
    x12: str
    control_number: int
    submitted_at: datetime
    number: int = 1


@dataclass(slots=True)
class _Member:
    member_id: UUID
    claimed_at: float
    attempts: list[_Attempt] = field(default_factory=list)


@dataclass
class Lane:
    """One execution of one send job (``sweep.send``) of one run."""

    directory: TenantDirectory
    pipeline: CheckPipeline
    http: httpx.AsyncClient
    """This lane's own connections to partners (see ``ClientPool``)."""
    clock: Clock
    tenant: Tenant
    run: Any
    width: int
    retry: RetryPolicy
    rate_wait_seconds: float
    claim_until: float
    """Monotonic time after which no new member is claimed."""
    deadline: float
    """Monotonic time by which every member's sends and retries must have ended."""
    stopping: asyncio.Event
    claimed: int = 0
    exhausted: bool = False
    """True once a claim found nothing left to claim."""
    _routes: dict[UUID, _Route] = field(default_factory=dict)
    _organisation: tuple[Any | None, str | None] | None = None
    _settler: _Settler | None = None

    @property
    def sweep_run_id(self) -> UUID:
        run_id: UUID = self.run.sweep_run_id
        return run_id

    def transaction(self) -> Any:
        return self.directory.transaction(self.tenant)

    async def run_lane(self) -> None:
        """Claim and send until nothing is QUEUED, the claiming window closes or the
        worker stops; then let every member in flight finish and settle. A failed claim
        stops the claiming (the members in flight still finish) and is raised after."""
        self._settler = _Settler(self)
        tasks: set[asyncio.Task[None]] = set()
        # Refill in batches of at least half the lane: one claim per member would cost
        # a transaction per member.
        threshold = max(1, self.width // 2)
        try:
            while not self.stopping.is_set() and time.monotonic() < self.claim_until:
                free = self.width - len(tasks)
                if free < threshold:
                    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                    tasks = {t for t in tasks if not t.done()}
                    continue
                members = await self._claim(free)
                if not members:
                    self.exhausted = True
                    break
                for member in members:
                    tasks.add(asyncio.create_task(self._member(member)))
            if tasks:
                await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            # Abandoned (the shutdown grace ran out): members still in flight stay
            # claimed; the answers already in are settled below.
            for task in tasks:
                task.cancel()
            raise
        except Exception:
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            await self._settler.close()

    # -- 1. claim ---------------------------------------------------------------------

    async def _claim(self, n: int) -> list[_Member]:
        at = self.clock.now()
        started = time.monotonic()
        async with self.transaction() as session:
            rows = await repository.claim_batch(
                session, self.sweep_run_id, list(self.run.payer_ids), n, at=at
            )
            if not rows:
                return []
            if self._organisation is None:
                self._organisation = await repository.organisation(session)
            for payer_id in {r.payer_id for r in rows if r.payer_id is not None}:
                if payer_id not in self._routes:
                    self._routes[payer_id] = self._route(await repository.route(session, payer_id))
            members, check_rows, uncovered = self._plan(rows, at)
            await self._build(session, members, check_rows, at)
            await repository.insert_checks(session, check_rows)
            await repository.add_check_ids(
                session,
                self.sweep_run_id,
                [(row["member_id"], row["check_id"]) for row in check_rows],
                at=at,
            )
            await repository.skip_members(session, self.sweep_run_id, uncovered, NO_COVERAGE, at=at)
        self.claimed += len(members) + len(uncovered)
        if uncovered:
            MEMBERS.labels(MemberStatus.SKIPPED.value).inc(len(uncovered))
        for member in members:
            member.claimed_at = started
        return members

    def _route(self, row: Any | None) -> _Route:
        if row is None:
            return _Route(trading_partner_id=None, partner=None, name="")
        try:
            partner = self.pipeline.endpoint(row)
        except NotSendable as error:
            return _Route(
                trading_partner_id=row.trading_partner_id,
                partner=None,
                name=row.name,
                error=str(error),
            )
        return _Route(
            trading_partner_id=row.trading_partner_id,
            partner=partner,
            name=row.name,
            usage_indicator=row.usage_indicator,
            partner_rps=row.max_requests_per_second,
            payer_rps=row.payer_max_rps,
            daily_cap=row.payer_daily_cap,
        )

    def _plan(
        self, rows: list[Any], at: datetime
    ) -> tuple[list[_Member], list[dict[str, Any]], list[UUID]]:
        """The claimed members with the checks to send, every check row to insert (those
        that failed without a 270 already FAILED), and the members with no coverage."""
        members: dict[UUID, _Member] = {}
        check_rows: list[dict[str, Any]] = []
        uncovered: list[UUID] = []
        fallback, ein = self._organisation or (None, None)
        for row in rows:
            if row.coverage_policy_id is None:
                uncovered.append(row.member_id)
                continue
            member = members.setdefault(row.member_id, _Member(row.member_id, 0.0))
            check_id = uuid4()
            trace = new_trace_number()
            route = self._routes[row.payer_id]
            base = _check_row(row, check_id, trace, self.sweep_run_id, route.trading_partner_id)
            failure: str | None = None
            if route.trading_partner_id is None:
                failure = f"No active trading partner for payer {row.payer_code}"
            elif route.error is not None:
                failure = route.error
            if failure is None:
                provider = (
                    SimpleNamespace(name=row.facility_name, npi=row.facility_npi)
                    if row.facility_npi
                    else fallback
                )
                try:
                    inquiry = inquiry_from(
                        row,
                        row,
                        provider=provider,
                        ein=ein,
                        service_date=row.service_date,
                        trace_number=trace,
                    )
                except NotSendable as error:
                    failure = str(error)
            if failure is not None:
                verdict = answers.failed(failure, retryable=False)
                check_rows.append(base | verdict.columns())
                _observe(route.name, verdict)
                continue
            asked = asked_about(inquiry)
            base["inquiry"] = asked.as_dict()
            check_rows.append(base)
            assert route.partner is not None
            member.attempts.append(
                _Attempt(
                    check_id=check_id,
                    member_id=row.member_id,
                    payer_id=row.payer_id,
                    coverage_policy_id=row.coverage_policy_id,
                    service_date=row.service_date,
                    payer_label=f"payer {row.payer_code}",
                    route=route,
                    inquiry=inquiry,
                    asked=asked,
                    previous=(
                        PreviousCheck.from_dict(row.previous_identity)
                        if row.previous_identity
                        else None
                    ),
                    x12="",
                    control_number=0,
                    submitted_at=at,
                )
            )
        return list(members.values()), check_rows, uncovered

    async def _build(
        self, session: Any, members: list[_Member], check_rows: list[dict[str, Any]], at: datetime
    ) -> None:
        """Reserve control numbers per partner and build each 270 into its check row (a
        270 the builder refuses fails its check: its number is a gap, which X12 allows)."""
        by_partner: dict[UUID, list[_Attempt]] = {}
        for member in members:
            for attempt in member.attempts:
                assert attempt.route.trading_partner_id is not None
                by_partner.setdefault(attempt.route.trading_partner_id, []).append(attempt)
        rows_by_id = {row["check_id"]: row for row in check_rows}
        failed: set[UUID] = set()
        # Partners in one order everywhere: two claims never wait on each other's
        # counters in opposite orders.
        for partner_id, attempts in sorted(by_partner.items(), key=lambda item: str(item[0])):
            first = await repository.allocate_control_numbers(session, partner_id, len(attempts))
            for offset, attempt in enumerate(attempts):
                row = rows_by_id[attempt.check_id]
                try:
                    attempt.x12 = _build(attempt, first + offset, at)
                except X12BuildError as error:
                    verdict = answers.failed(f"270 not built: {error}", retryable=False)
                    row |= verdict.columns()
                    _observe(attempt.route.name, verdict)
                    failed.add(attempt.check_id)
                    continue
                attempt.control_number = first + offset
                row |= {
                    "control_number": attempt.control_number,
                    "request_x12": attempt.x12,
                    "submitted_at": at,
                }
        if failed:
            for member in members:
                member.attempts = [a for a in member.attempts if a.check_id not in failed]

    # -- 2. send ----------------------------------------------------------------------

    async def _member(self, member: _Member) -> None:
        assert self._settler is not None
        try:
            for attempt in member.attempts:
                await self._check(attempt)
        except Exception as error:
            # The member stays claimed: the claim timeout reports it, never a resend.
            log.error(
                "sweep.member_error",
                sweep_run_id=str(self.sweep_run_id),
                error=type(error).__name__,
            )
            return
        self._settler.add_member(member)

    async def _check(self, attempt: _Attempt) -> None:
        assert self._settler is not None
        while True:
            verdict, values = await self._send(attempt)
            retry = attempt.number  # the retry this one would be
            if (
                verdict.status is CheckStatus.FAILED
                and verdict.retryable
                and retry <= self.retry.attempts
                and self._time_for_retry(attempt, self.retry.wait(retry))
            ):
                attempt = await self._retry(attempt, values, self.retry.wait(retry))
                continue
            if verdict.final:
                self._settler.add_final(attempt.check_id, values)
            else:
                self._settler.add_awaiting(attempt.check_id, values)
            return

    def _time_for_retry(self, attempt: _Attempt, wait: float) -> bool:
        assert attempt.route.partner is not None
        needed = wait + attempt.route.partner.timeout_seconds + 1.0
        return time.monotonic() + needed < self.deadline

    async def _send(self, attempt: _Attempt) -> tuple[Verdict, dict[str, Any]]:
        partner = attempt.route.partner
        assert partner is not None
        limits = self.pipeline.limits(self.tenant.tenant_id)
        room = self.deadline - time.monotonic() - partner.timeout_seconds - 1.0
        try:
            admission = await limits.admit(
                partner=partner,
                partner_rps=attempt.route.partner_rps,
                payer_id=attempt.payer_id,
                payer_label=attempt.payer_label,
                payer_rps=attempt.route.payer_rps,
                daily_cap=attempt.route.daily_cap,
                max_wait_seconds=max(0.001, min(self.rate_wait_seconds, room)),
            )
        except CheckRefused as refused:
            verdict = answers.failed(refused.reason, retryable=refused.retryable)
            _observe(partner.name, verdict, attempt.check_id)
            return verdict, _final_values(verdict, raw=None, at=self.clock.now(), sent=None)
        try:
            reply = await sender_for(partner, self.http).send(
                partner, attempt.x12, payload_id=str(attempt.check_id)
            )
        except TransportFailure as failure:
            await limits.record(admission, failure=failure)
            verdict = answers.failed(failure.reason, retryable=failure.retryable)
            _observe(partner.name, verdict, attempt.check_id)
            return verdict, _final_values(
                verdict, raw=None, at=self.clock.now(), sent=attempt.submitted_at
            )
        await limits.record(admission, failure=None)
        ROUND_TRIP.labels(partner.name).observe(reply.elapsed_ms / 1000)
        verdict = answers.AWAITING
        if reply.body.strip():
            verdict = answer_verdict(
                reply.body,
                service_date=attempt.service_date,
                trace_number=attempt.inquiry.trace_number,
                control_number=attempt.control_number,
                asked=attempt.asked,
                partner_name=partner.name,
                previous=attempt.previous,
            )
        _observe(partner.name, verdict, attempt.check_id)
        at = self.clock.now()
        raw = reply.body or None
        if not verdict.final:
            kind = verdict.response_kind.value if raw and verdict.response_kind else None
            return verdict, {
                "response_x12": raw,
                "response_kind": kind,
                "elapsed_ms": reply.elapsed_ms,
            }
        values = _final_values(verdict, raw=raw, at=at, sent=attempt.submitted_at)
        values["elapsed_ms"] = reply.elapsed_ms
        return verdict, values

    async def _retry(self, failed: _Attempt, values: dict[str, Any], wait: float) -> _Attempt:
        """Settle the failed attempt and insert the retry's row (pending) in one
        transaction, wait, then give the retry its control number and 270."""
        check_id, trace = uuid4(), new_trace_number()
        inquiry = dataclasses.replace(failed.inquiry, trace_number=trace)
        at = self.clock.now()
        route = failed.route
        async with self.transaction() as session:
            await repository.settle_checks(
                session, [{"check_id": failed.check_id, "updated_at": at, **values}], []
            )
            row = {
                "check_id": check_id,
                "member_id": failed.member_id,
                "coverage_policy_id": failed.coverage_policy_id,
                "payer_id": failed.payer_id,
                "trading_partner_id": route.trading_partner_id,
                "service_date": failed.service_date,
                "sweep_run_id": self.sweep_run_id,
                "trace_number": trace,
                "status": CheckStatus.SUBMITTED.value,
                "inquiry": failed.asked.as_dict(),
            }
            await repository.insert_checks(session, [row])
            await repository.add_check_ids(
                session, self.sweep_run_id, [(failed.member_id, check_id)], at=at
            )
        await self._sleep(wait)
        at = self.clock.now()
        retry = dataclasses.replace(
            failed,
            check_id=check_id,
            inquiry=inquiry,
            submitted_at=at,
            number=failed.number + 1,
        )
        assert route.trading_partner_id is not None
        async with self.transaction() as session:
            number = await repository.allocate_control_numbers(session, route.trading_partner_id, 1)
            retry.x12 = _build(retry, number, at)
            retry.control_number = number
            await repository.mark_sent(
                session, check_id, control_number=number, request_x12=retry.x12, at=at
            )
        return retry

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)


class _Settler:
    """Settles a lane's answers in batches: whatever finished while the previous
    transaction ran goes into the next one."""

    def __init__(self, lane: Lane) -> None:
        self.lane = lane
        self._final: list[dict[str, Any]] = []
        self._awaiting: list[dict[str, Any]] = []
        self._members: list[_Member] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._loop())

    def add_final(self, check_id: UUID, values: dict[str, Any]) -> None:
        self._final.append({"check_id": check_id, "updated_at": self.lane.clock.now(), **values})
        self._wake.set()

    def add_awaiting(self, check_id: UUID, values: dict[str, Any]) -> None:
        self._awaiting.append({"check_id": check_id, "updated_at": self.lane.clock.now(), **values})
        self._wake.set()

    def add_member(self, member: _Member) -> None:
        """The member's last check has been added: its outcome is due in the next flush."""
        self._members.append(member)
        self._wake.set()

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        await self._task

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._final or self._awaiting or self._members:
                final, self._final = self._final, []
                awaiting, self._awaiting = self._awaiting, []
                members, self._members = self._members, []
                await self._flush(final, awaiting, members)
            elif self._closing:
                return
            if self._closing:
                self._wake.set()

    async def _flush(
        self, final: list[dict[str, Any]], awaiting: list[dict[str, Any]], members: list[_Member]
    ) -> None:
        lane = self.lane
        started = time.perf_counter()
        for attempt in range(1, FLUSH_ATTEMPTS + 1):
            try:
                at = lane.clock.now()
                async with lane.transaction() as session:
                    await repository.settle_checks(session, final, awaiting)
                    changed = await repository.refresh_members(
                        session, lane.sweep_run_id, [m.member_id for m in members], at=at
                    )
                break
            except Exception as error:  # a lost connection, a deadlock: try again
                if attempt == FLUSH_ATTEMPTS:
                    log.error(
                        "sweep.settle_failed",
                        sweep_run_id=str(lane.sweep_run_id),
                        checks=len(final) + len(awaiting),
                        error=type(error).__name__,
                    )
                    return
                await asyncio.sleep(0.2 * attempt)
        FLUSH_SECONDS.observe(time.perf_counter() - started)
        for row in changed:
            MEMBERS.labels(row.status).inc()
        now = time.monotonic()
        for member in members:
            MEMBER_SECONDS.observe(now - member.claimed_at)


def _check_row(
    row: Any, check_id: UUID, trace: str, sweep_run_id: UUID, partner_id: UUID | None
) -> dict[str, Any]:
    """A check row with every column the sweep writes, so one INSERT takes them all."""
    return {
        "check_id": check_id,
        "member_id": row.member_id,
        "coverage_policy_id": row.coverage_policy_id,
        "payer_id": row.payer_id,
        "trading_partner_id": partner_id,
        "service_date": row.service_date,
        "sweep_run_id": sweep_run_id,
        "trace_number": trace,
        "inquiry": None,
        "control_number": None,
        "request_x12": None,
        "submitted_at": None,
        **answers.Verdict(status=CheckStatus.SUBMITTED).columns(),
    }


def _build(attempt: _Attempt, number: int, at: datetime) -> str:
    partner = attempt.route.partner
    assert partner is not None
    envelope = envelope_for(partner, attempt.route.usage_indicator, number, at)
    return build_270(envelope, attempt.inquiry)


def _final_values(
    verdict: Verdict, *, raw: str | None, at: datetime, sent: datetime | None
) -> dict[str, Any]:
    """Every column of ``repository.FINAL_COLUMNS`` for a final verdict."""
    kind = verdict.response_kind.value if raw is not None and verdict.response_kind else None
    return verdict.columns() | {
        "response_x12": raw,
        "response_kind": kind,
        "received_at": at if verdict.status is CheckStatus.RECEIVED else None,
        "elapsed_ms": None,
        "submitted_at": sent,
    }


def _observe(partner: str, verdict: Verdict, check_id: UUID | None = None) -> None:
    """Metrics and one log line per failed check, as the checks pipeline writes them."""
    CHECKS.labels(partner, verdict.status.value, str(verdict.retryable).lower()).inc()
    if verdict.status is CheckStatus.FAILED:
        log.info(
            "check.failed",
            check_id=str(check_id) if check_id else None,
            trading_partner=partner,
            retryable=verdict.retryable,
            error=verdict.error,
        )
