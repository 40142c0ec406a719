"""One eligibility check from request to stored answer: the pipeline every sweep uses.

The steps, each its own short transaction so that no database connection is held while
a partner thinks (up to 20 s) and every step that matters is committed before the next
one can fail:

1. **Plan** (one transaction): pick the coverage, the payer's active trading partner and
   the provider; insert the check (SUBMITTED, or FAILED at once when no partner routes
   the payer).
2. **Build** (one transaction): allocate the partner's control numbers, build the 270 and
   store it with them. Committed before the send, so a 999 or TA1 that arrives later
   finds the check, and a crash after the send leaves a SUBMITTED check whose 270 is on
   record rather than a phantom.
3. **Admit**: the partner's circuit breaker, the payer's daily cap, then a token from the
   partner's and the payer's rate buckets (Redis, shared by every process). A refusal
   fails the check without sending (its control number is then a gap, which X12
   allows). Admission comes after the database work so that only the send separates a
   token from its request: the partner sees the rate the buckets grant.
4. **Send** through the partner's transport, outside any transaction.
5. **Settle** (one transaction): read the answer (``answers``) and apply it only if the
   check is still SUBMITTED, so an inbound file that raced the reply is not overwritten.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

import httpx
from prometheus_client import Counter, Histogram
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.check import answers, repository
from eligibility_sweeps.check.answers import Inquiry as AskedAbout
from eligibility_sweeps.check.answers import Verdict
from eligibility_sweeps.models import CheckStatus, Relationship
from eligibility_sweeps.trading_partner.control_numbers import (
    new_trace_number,
    next_control_numbers,
)
from eligibility_sweeps.trading_partner.credentials import (
    SecretBox,
    SecretsKeyMissing,
    SecretUnreadable,
)
from eligibility_sweeps.transport.base import PartnerEndpoint, Reply, TransportFailure, sender_for
from eligibility_sweeps.transport.limits import CheckRefused, Limits
from eligibility_sweeps.x12 import detect
from eligibility_sweeps.x12.anomalies import PreviousCheck
from eligibility_sweeps.x12.build270 import (
    Dependent,
    Envelope,
    Inquiry,
    Payer,
    PersonName,
    Provider,
    Subscriber,
    X12BuildError,
    build_270,
    trace_originator_from_ein,
)
from eligibility_sweeps.x12.read271 import parse_271_all
from eligibility_sweeps.x12.read_ack import parse_999, parse_ta1
from eligibility_sweeps.x12.segments import X12Error
from rcm_kit.clock import Clock
from rcm_kit.errors import InvalidInput
from rcm_kit.logging import get_logger

log = get_logger(__name__)

Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]

CHECKS = Counter(
    "eligibility_checks_total",
    "Eligibility checks by trading partner and outcome (SUBMITTED = awaiting a late 271)",
    ["trading_partner", "status", "retryable"],
)
ROUND_TRIP = Histogram(
    "eligibility_270_round_trip_seconds",
    "A real-time 270's round trip to its trading partner",
    ["trading_partner"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30),
)


class NoCoverage(InvalidInput):
    title = "No coverage to check"


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckOrder:
    """What to check: one member's coverage on one date of service."""

    member_id: UUID
    service_date: date
    coverage_policy_id: UUID | None = None
    payer_id: UUID | None = None
    sweep_run_id: UUID | None = None
    """The sweep run that sends it (stored on the check); None from the API."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Plan:
    """Everything a 270 needs, loaded in step 1."""

    check_id: UUID
    member_id: UUID
    payer_id: UUID
    payer_label: str
    partner: PartnerEndpoint
    usage_indicator: str
    partner_rps: float | None
    payer_rps: float | None
    daily_cap: int | None
    inquiry: Inquiry
    asked: AskedAbout


@dataclass
class CheckPipeline:
    """The long-lived parts a check needs; one per process."""

    redis: Redis
    http: httpx.AsyncClient
    box: SecretBox | None
    clock: Clock
    breaker_cooldown_seconds: float = 30.0
    max_wait_seconds: float = 60.0
    _limits: dict[UUID, Limits] = field(default_factory=dict)

    def limits(self, tenant_id: UUID) -> Limits:
        """The tenant's limits: its own Redis keys, so tenants never share counters."""
        if tenant_id not in self._limits:
            self._limits[tenant_id] = Limits(
                self.redis,
                prefix=f"rcm:{tenant_id}",
                clock=self.clock.now,
                breaker_cooldown_seconds=self.breaker_cooldown_seconds,
            )
        return self._limits[tenant_id]

    async def run(self, tenant_id: UUID, transaction: Transaction, order: CheckOrder) -> UUID:
        """Run one check of tenant ``tenant_id`` to its outcome (or to SUBMITTED when the
        271 comes later) and return its id. ``transaction`` opens one unit of work on
        the tenant's database. Raises ``InvalidInput`` (422) when there is nothing to
        check."""
        plan = await self._plan(transaction, order)
        if isinstance(plan, UUID):
            return plan
        x12, control_number = await self._build(transaction, plan)
        limits = self.limits(tenant_id)
        try:
            admission = await limits.admit(
                partner=plan.partner,
                partner_rps=plan.partner_rps,
                payer_id=plan.payer_id,
                payer_label=plan.payer_label,
                payer_rps=plan.payer_rps,
                daily_cap=plan.daily_cap,
                max_wait_seconds=self.max_wait_seconds,
            )
        except CheckRefused as refused:
            verdict = answers.failed(refused.reason, retryable=refused.retryable)
            await self._settle(transaction, plan, verdict, sent=False)
            return plan.check_id
        try:
            reply = await sender_for(plan.partner, self.http).send(
                plan.partner, x12, payload_id=str(plan.check_id)
            )
        except TransportFailure as failure:
            await limits.record(admission, failure=failure)
            await self._settle(
                transaction, plan, answers.failed(failure.reason, retryable=failure.retryable)
            )
            return plan.check_id
        await limits.record(admission, failure=None)
        await self._answer(transaction, plan, reply, control_number)
        return plan.check_id

    # -- step 1 ---------------------------------------------------------------------

    async def _plan(self, transaction: Transaction, order: CheckOrder) -> _Plan | UUID:
        """The plan of the check, or the id of a check that already FAILED."""
        async with transaction() as session:
            member = await repository.get_member(session, order.member_id)
            if member is None:
                raise NoCoverage(["body", "member_id"], "no such member in your organization")
            policy = await _coverage(session, order)
            row: dict[str, Any] = {
                "member_id": order.member_id,
                "coverage_policy_id": policy.coverage_policy_id,
                "payer_id": policy.payer_id,
                "service_date": order.service_date,
                "sweep_run_id": order.sweep_run_id,
                "trace_number": new_trace_number(),
                "status": CheckStatus.SUBMITTED.value,
            }
            route = await repository.route(session, policy.payer_id)
            if route is None:
                verdict = answers.failed(
                    f"No active trading partner for payer {policy.payer_code}", retryable=False
                )
                _observe("", verdict, check_id=None)
                return await repository.insert_check(session, row | verdict.columns())
            row["trading_partner_id"] = route.trading_partner_id
            try:
                partner = self.endpoint(route)
                inquiry = await _inquiry(session, member, policy, order, row["trace_number"])
                _trial_build(partner, inquiry, self.clock.now())
            except NotSendable as error:
                verdict = answers.failed(str(error), retryable=False)
                _observe(route.name, verdict, check_id=None)
                return await repository.insert_check(session, row | verdict.columns())
            asked = asked_about(inquiry)
            row["inquiry"] = asked.as_dict()
            check_id = await repository.insert_check(session, row)
        return _Plan(
            check_id=check_id,
            member_id=order.member_id,
            payer_id=policy.payer_id,
            payer_label=f"payer {policy.payer_code}",
            partner=partner,
            usage_indicator=route.usage_indicator,
            partner_rps=route.max_requests_per_second,
            payer_rps=route.payer_max_rps,
            daily_cap=route.payer_daily_cap,
            inquiry=inquiry,
            asked=asked,
        )

    def endpoint(self, route: Any) -> PartnerEndpoint:
        """The partner as its transport needs it, credentials decrypted."""
        try:
            return PartnerEndpoint.from_row(route._mapping, box=self.box)
        except SecretsKeyMissing:
            raise NotSendable(
                f"SECRETS_KEY is not set, so the credentials of {route.name} cannot be read"
            ) from None
        except SecretUnreadable:
            raise NotSendable(
                f"The stored credentials of {route.name} do not decrypt with SECRETS_KEY"
                " (was the key rotated out?); enter them again"
            ) from None

    # -- step 2 ---------------------------------------------------------------------

    async def _build(self, transaction: Transaction, plan: _Plan) -> tuple[str, int]:
        """The 270, stored with its control numbers. The inquiry already passed a trial
        build in step 1, so only the control numbers are new here."""
        async with transaction() as session:
            numbers = await next_control_numbers(session, plan.partner.trading_partner_id)
            at = self.clock.now()
            envelope = envelope_for(plan.partner, plan.usage_indicator, numbers.interchange, at)
            x12 = build_270(envelope, plan.inquiry)
            await repository.update_check(
                session,
                plan.check_id,
                {"control_number": numbers.interchange, "request_x12": x12, "submitted_at": at},
            )
        return x12, numbers.interchange

    # -- step 5 ---------------------------------------------------------------------

    async def _answer(
        self, transaction: Transaction, plan: _Plan, reply: Reply, control_number: int
    ) -> None:
        """Read the real-time reply and settle the check, in one transaction (reading a
        271 looks up the member's previous check for the change anomalies)."""
        ROUND_TRIP.labels(plan.partner.name).observe(reply.elapsed_ms / 1000)
        at = self.clock.now()
        async with transaction() as session:
            verdict = answers.AWAITING
            if reply.body.strip():
                verdict = await read_answer(
                    session,
                    reply.body,
                    check_id=plan.check_id,
                    member_id=plan.member_id,
                    payer_id=plan.payer_id,
                    service_date=plan.inquiry.service_date,
                    trace_number=plan.inquiry.trace_number,
                    control_number=control_number,
                    asked=plan.asked,
                    partner_name=plan.partner.name,
                )
            values = verdict.settlement(raw=reply.body or None, at=at)
            values["elapsed_ms"] = reply.elapsed_ms
            settled = await repository.settle(session, plan.check_id, values, at=at)
        _observe(plan.partner.name, verdict, check_id=plan.check_id)
        if not settled:
            log.info("check.already_settled", check_id=str(plan.check_id))

    async def _settle(
        self, transaction: Transaction, plan: _Plan, verdict: Verdict, *, sent: bool = True
    ) -> None:
        """Fail the check without an answer: the transport failed, or the limits refused
        it (``sent=False``: the 270 built for it never left)."""
        at = self.clock.now()
        values = verdict.settlement(raw=None, at=at)
        if not sent:
            values["submitted_at"] = None
        _observe(plan.partner.name, verdict, check_id=plan.check_id)
        async with transaction() as session:
            settled = await repository.settle(session, plan.check_id, values, at=at)
        if not settled:
            log.info("check.already_settled", check_id=str(plan.check_id))


def _observe(partner: str, verdict: Verdict, *, check_id: UUID | None) -> None:
    """Metrics and one log line per outcome; never patient data, never a secret (the
    transport scrubbed the error text of credentials)."""
    CHECKS.labels(partner, verdict.status.value, str(verdict.retryable).lower()).inc()
    if verdict.status is CheckStatus.FAILED:
        log.info(
            "check.failed",
            check_id=str(check_id) if check_id else None,
            trading_partner=partner,
            retryable=verdict.retryable,
            error=verdict.error,
        )


class NotSendable(Exception):
    """A check that fails before a 270 exists: configuration or data, not the partner."""


def envelope_for(partner: PartnerEndpoint, usage: str, number: int, at: datetime) -> Envelope:
    return Envelope(
        sender_id=partner.sender_id,
        receiver_id=partner.receiver_id,
        interchange_control_number=number,
        group_control_number=number,
        transaction_control_number=number,
        timestamp=at,
        usage_indicator="T" if usage == "T" else "P",
    )


def _trial_build(partner: PartnerEndpoint, inquiry: Inquiry, at: datetime) -> None:
    """Build the 270 once with a placeholder control number, before any limit or
    number is spent on it: a name X12 cannot carry fails the check here, in words."""
    try:
        build_270(envelope_for(partner, "T", 1, at), inquiry)
    except X12BuildError as error:
        raise NotSendable(f"270 not built: {error}") from None


async def read_answer(
    session: AsyncSession,
    text: str,
    *,
    check_id: UUID,
    member_id: UUID,
    payer_id: UUID,
    service_date: date,
    trace_number: str,
    control_number: int | None,
    asked: AskedAbout,
    partner_name: str,
) -> Verdict:
    """The verdict of ``text`` (a 271, 999 or TA1) on one check."""
    previous: PreviousCheck | None = None
    if detect.sniff(text) == "271":
        stored = await repository.previous_identity(
            session, member_id=member_id, payer_id=payer_id, before=check_id
        )
        previous = PreviousCheck.from_dict(stored) if stored is not None else None
    return answer_verdict(
        text,
        service_date=service_date,
        trace_number=trace_number,
        control_number=control_number,
        asked=asked,
        partner_name=partner_name,
        previous=previous,
    )


def answer_verdict(
    text: str,
    *,
    service_date: date,
    trace_number: str,
    control_number: int | None,
    asked: AskedAbout,
    partner_name: str,
    previous: PreviousCheck | None,
) -> Verdict:
    """``read_answer`` without the database: ``previous`` is the payer's answer in the
    member's latest earlier RECEIVED check with this payer (the sweep worker loads it for
    a whole batch at once)."""
    kind = detect.sniff(text)
    try:
        if kind == "271":
            responses = parse_271_all(text, service_date=service_date)
            mine = [r for r in responses if trace_number in r.trace_numbers]
            return answers.from_271(
                (mine or list(responses))[0],
                inquiry=asked,
                service_date=service_date,
                previous=previous,
            )
        if kind == "999":
            return answers.from_999(parse_999(text), control_number)
        if kind == "TA1":
            return answers.from_ta1(parse_ta1(text))
    except X12Error as error:
        return answers.failed(f"Unreadable answer from {partner_name}: {error}", retryable=False)
    return answers.failed(
        f"Unreadable answer from {partner_name}: not a 271, 999 or TA1", retryable=False
    )


async def _coverage(session: AsyncSession, order: CheckOrder) -> Any:
    """The policy given, else the member's active policy with that payer, else the
    member's primary active policy on the date of service (API.md)."""
    if order.coverage_policy_id is not None:
        policy = await repository.policy_of_member(
            session, order.member_id, order.coverage_policy_id
        )
        if policy is None:
            raise NoCoverage(["body", "coverage_policy_id"], "not a policy of this member")
        return policy
    policy = await repository.active_policy(
        session, order.member_id, order.service_date, order.payer_id
    )
    if policy is not None:
        return policy
    if order.payer_id is not None:
        raise NoCoverage(
            ["body", "payer_id"], "the member has no policy with this payer active on service_date"
        )
    raise NoCoverage(["body", "service_date"], "No active coverage on the service date")


async def _inquiry(
    session: AsyncSession, member: Any, policy: Any, order: CheckOrder, trace_number: str
) -> Inquiry:
    provider = await repository.provider(session, order.member_id, order.service_date)
    ein = await repository.organisation_ein(session)
    return inquiry_from(
        member,
        policy,
        provider=provider,
        ein=ein,
        service_date=order.service_date,
        trace_number=trace_number,
    )


def inquiry_from(
    member: Any,
    policy: Any,
    *,
    provider: Any | None,
    ein: str | None,
    service_date: date,
    trace_number: str,
) -> Inquiry:
    """The 270's content from rows already loaded: the member, the policy with its
    ``payer_code`` and ``payer_name``, the 2100B provider (``name``, ``npi``) or None,
    and the organisation's EIN. Raises ``NotSendable`` when no 270 can be built."""
    if provider is None:
        raise NotSendable(
            "270 not built: no facility or billing entity has an NPI for 2100B"
            " (import one with its npi)"
        )
    patient = PersonName(last=member.last_name, first=member.first_name)
    gender = member.gender if member.gender in ("F", "M") else None
    dependent = None
    if policy.relationship == Relationship.SELF:
        subscriber = Subscriber(
            member_id=policy.subscriber_id,
            name=patient,
            birth_date=member.date_of_birth,
            gender=gender,
        )
    else:
        subscriber = Subscriber(
            member_id=policy.subscriber_id,
            name=PersonName(last=policy.subscriber_last_name, first=policy.subscriber_first_name),
            birth_date=policy.subscriber_date_of_birth,
        )
        dependent = Dependent(name=patient, birth_date=member.date_of_birth, gender=gender)
    try:
        originator = trace_originator_from_ein(ein) if ein else None
    except X12BuildError as error:
        raise NotSendable(f"270 not built: billing entity tax id: {error}") from None
    return Inquiry(
        payer=Payer(code=policy.payer_code, name=policy.payer_name),
        provider=Provider(npi=provider.npi, name=provider.name),
        subscriber=subscriber,
        dependent=dependent,
        service_date=service_date,
        trace_number=trace_number,
        trace_originator=originator or _assigned_originator(provider.npi),
    )


def _assigned_originator(npi: str) -> str:
    """TRN03 without an EIN: ``9`` and a user-assigned 9-character id, here the first
    nine digits of the provider's NPI (the IG allows any id the submitter assigns)."""
    return "9" + npi[:9]


def asked_about(inquiry: Inquiry) -> AskedAbout:
    patient = inquiry.dependent or inquiry.subscriber
    return AskedAbout(
        member_id=inquiry.subscriber.member_id,
        first_name=patient.name.first or "",
        last_name=patient.name.last,
        birth_date=patient.birth_date,
    )
