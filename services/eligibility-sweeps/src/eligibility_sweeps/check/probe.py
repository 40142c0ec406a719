"""The connectivity test of a trading partner (``POST .../trading-partners/{id}/test``).

A real 270 goes out, so the test proves what a check needs: the URL, TLS, the
credentials, the envelope ids and the transport. It asks about a made-up member, so a
"subscriber not found" 271 is a success here; it uses the partner's next control
numbers (never reused), the usage indicator ``T`` (test data), and bypasses the rate
limits and the circuit breaker: an operator testing a partner wants to know now, and a
probe must not spend a payer's daily cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from uuid import UUID

from eligibility_sweeps.check import repository as checks
from eligibility_sweeps.check.pipeline import (
    CheckPipeline,
    NotSendable,
    Transaction,
    envelope_for,
)
from eligibility_sweeps.trading_partner import repository
from eligibility_sweeps.trading_partner.control_numbers import (
    new_trace_number,
    next_control_numbers,
)
from eligibility_sweeps.transport.base import TransportFailure, sender_for
from eligibility_sweeps.x12 import detect
from eligibility_sweeps.x12.build270 import (
    Inquiry,
    Payer,
    PersonName,
    Provider,
    Subscriber,
    X12BuildError,
    build_270,
)
from eligibility_sweeps.x12.read271 import parse_271
from eligibility_sweeps.x12.read_ack import parse_999, parse_ta1
from eligibility_sweeps.x12.segments import X12Error

PROBE_MEMBER_ID = "CONNECTIVITYTEST"
PROBE_NAME = PersonName(last="CONNECTIVITY", first="TEST")
PROBE_BIRTH_DATE = date(1970, 1, 1)
# A well-formed NPI (its Luhn check digit holds) for tenants without one configured.
PLACEHOLDER_NPI = "1234567893"
PLACEHOLDER_PAYER = Payer(code="CONNECTIVITYTEST", name="CONNECTIVITY TEST")


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    ok: bool
    outcome: str
    elapsed_ms: float | None = None
    response_kind: str | None = None


async def probe(
    pipeline: CheckPipeline, transaction: Transaction, trading_partner_id: UUID
) -> ProbeOutcome | None:
    """Send the probe and describe what happened; None when the partner does not exist."""
    async with transaction() as session:
        row = await repository.get_partner(session, trading_partner_id)
        if row is None:
            return None
        try:
            partner = pipeline.endpoint(row)
        except NotSendable as error:
            return ProbeOutcome(False, str(error))
        routed = await checks.first_routed_payer(session, trading_partner_id)
        provider = await checks.billing_provider(session)
        numbers = await next_control_numbers(session, trading_partner_id)
        at = pipeline.clock.now()
    payer = Payer(code=routed.payer_code, name=routed.name) if routed else PLACEHOLDER_PAYER
    inquiry = Inquiry(
        payer=payer,
        provider=Provider(
            npi=provider.npi if provider else PLACEHOLDER_NPI,
            name=provider.name if provider else "CONNECTIVITY TEST",
        ),
        subscriber=Subscriber(
            member_id=PROBE_MEMBER_ID, name=PROBE_NAME, birth_date=PROBE_BIRTH_DATE
        ),
        service_date=at.date(),
        trace_number=new_trace_number(),
        trace_originator="9" + (provider.npi if provider else PLACEHOLDER_NPI)[:9],
    )
    try:
        x12 = build_270(envelope_for(partner, "T", numbers.interchange, at), inquiry)
    except X12BuildError as error:
        return ProbeOutcome(False, f"270 not built: {error}")
    try:
        # CORE requires a UUID PayloadID; the trace number is one (32 hex digits), so
        # the envelope and TRN02 name the same probe.
        reply = await sender_for(partner, pipeline.http).send(
            partner, x12, payload_id=str(UUID(inquiry.trace_number))
        )
    except TransportFailure as failure:
        return ProbeOutcome(False, failure.reason)
    took = f"in {reply.elapsed_ms:.0f} ms"
    if not reply.body.strip():
        return ProbeOutcome(
            True,
            f"Connected: {partner.name} accepted the probe for later delivery"
            f" (HTTP {reply.status_code}) {took}",
            reply.elapsed_ms,
        )
    return _describe(partner.name, reply.body, took, reply.elapsed_ms)


def _describe(name: str, body: str, took: str, elapsed_ms: float) -> ProbeOutcome:
    kind = detect.sniff(body)
    try:
        if kind == "271":
            response = parse_271(body)
            rejects = "; ".join(r.text() for r in response.rejects)
            said = f" ({rejects})" if rejects else ""
            return ProbeOutcome(
                True, f"Connected: {name} answered with a 271 {took}{said}", elapsed_ms, kind
            )
        if kind == "999":
            reason = parse_999(body).failure_reason()
            if reason is None:
                return ProbeOutcome(
                    True, f"Connected: {name} accepted the probe (999) {took}", elapsed_ms, kind
                )
            return ProbeOutcome(False, f"{name} answered but {reason}", elapsed_ms, kind)
        if kind == "TA1":
            reason = parse_ta1(body).failure_reason()
            if reason is None:
                return ProbeOutcome(
                    True,
                    f"Connected: {name} accepted the interchange (TA1) {took}",
                    elapsed_ms,
                    kind,
                )
            return ProbeOutcome(False, f"{name} answered but {reason}", elapsed_ms, kind)
    except X12Error as error:
        return ProbeOutcome(
            False, f"{name} answered {took} with unreadable X12: {error}", elapsed_ms
        )
    return ProbeOutcome(
        False, f"{name} answered {took}, but not with a 271, 999 or TA1", elapsed_ms
    )
