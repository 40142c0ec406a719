"""What an answer from a trading partner means for one check: the ``Verdict``.

One place decides it for both paths a 271, 999 or TA1 can take: the real-time reply to
the 270 (``pipeline``) and a file delivered later (``inbound``). Pure code: the callers
load the check's context and store the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic_core import to_jsonable_python

from eligibility_sweeps.models import CheckStatus, ResponseKind
from eligibility_sweeps.x12.anomalies import (
    PreviousCheck,
    SentIdentity,
    detect_anomalies,
    plan_lines,
    snapshot,
)
from eligibility_sweeps.x12.build270 import PersonName
from eligibility_sweeps.x12.read271 import EligibilityResponse, Outcome, response_outcome
from eligibility_sweeps.x12.read_ack import Acknowledgment999, AckStatus, TA1Acknowledgment


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """The columns an answer sets on its check. ``SUBMITTED`` means "still awaiting
    the 271" (an accepted 999 or TA1, or a partner that took the 270 for later)."""

    status: CheckStatus
    retryable: bool = False
    error: str | None = None
    response_kind: ResponseKind | None = None
    coverage_status: str | None = None
    anomalies: list[str] = field(default_factory=list)
    benefits: list[dict[str, Any]] = field(default_factory=list)
    plan: dict[str, Any] | None = None
    rejects: list[dict[str, Any]] = field(default_factory=list)
    other_payers: list[dict[str, Any]] = field(default_factory=list)
    identity: dict[str, str] | None = None

    @property
    def final(self) -> bool:
        return self.status is not CheckStatus.SUBMITTED

    def settlement(self, *, raw: str | None, at: datetime) -> dict[str, Any]:
        """The columns to set on the check: the answer as received (``raw``, when there
        was one) and, once final, everything the verdict says."""
        values = self.columns() if self.final else {}
        if raw is not None:
            kind = self.response_kind.value if self.response_kind else None
            values |= {"response_x12": raw, "response_kind": kind}
        if self.status is CheckStatus.RECEIVED:
            values["received_at"] = at
        return values

    def columns(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "retryable": self.retryable,
            "error": self.error,
            "coverage_status": self.coverage_status,
            "anomalies": self.anomalies,
            "benefits": self.benefits,
            "plan": self.plan,
            "rejects": self.rejects,
            "other_payers": self.other_payers,
            "identity": self.identity,
        }


def failed(reason: str, *, retryable: bool) -> Verdict:
    return Verdict(status=CheckStatus.FAILED, retryable=retryable, error=reason)


AWAITING = Verdict(status=CheckStatus.SUBMITTED)


@dataclass(frozen=True, slots=True, kw_only=True)
class Inquiry:
    """Who a check asked about, as stored with it (``eligibility_check.inquiry``)."""

    member_id: str
    first_name: str
    last_name: str
    birth_date: date

    def sent(self) -> SentIdentity:
        return SentIdentity(
            member_id=self.member_id,
            name=PersonName(last=self.last_name, first=self.first_name),
            birth_date=self.birth_date,
        )

    def as_dict(self) -> dict[str, str]:
        return {
            "member_id": self.member_id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "birth_date": self.birth_date.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Inquiry:
        return cls(
            member_id=str(data["member_id"]),
            first_name=str(data.get("first_name") or ""),
            last_name=str(data["last_name"]),
            birth_date=date.fromisoformat(str(data["birth_date"])),
        )


def from_271(
    response: EligibilityResponse,
    *,
    inquiry: Inquiry,
    service_date: date,
    previous: PreviousCheck | None,
) -> Verdict:
    """A readable 271: RECEIVED with its coverage and anomalies, or FAILED when the payer
    could not answer now (AAA 42/80, retryable) or named our ids wrong (AAA 79)."""
    parsed = _parsed(response)
    outcome = response_outcome(response)
    if outcome.status is Outcome.FAILED:
        return Verdict(
            status=CheckStatus.FAILED,
            retryable=outcome.retryable,
            error=outcome.reason,
            response_kind=ResponseKind.X271,
            **parsed,
        )
    anomalies = detect_anomalies(
        response, sent=inquiry.sent(), service_date=service_date, previous=previous
    )
    return Verdict(
        status=CheckStatus.RECEIVED,
        response_kind=ResponseKind.X271,
        coverage_status=response.coverage_status.value,
        anomalies=[a.value for a in anomalies],
        identity=snapshot(response).as_dict(),
        **parsed,
    )


def from_999(ack: Acknowledgment999, control_number: int | None) -> Verdict:
    """A rejected 999 fails the check for good (resending the same 270 gets the same
    rejection); an accepted one means the 271 is still to come."""
    st02 = f"{control_number:04d}" if control_number is not None else None
    reason = ack.failure_reason(st02)
    if reason is None:
        return Verdict(status=CheckStatus.SUBMITTED, response_kind=ResponseKind.X999)
    return Verdict(
        status=CheckStatus.FAILED, error=reason, retryable=False, response_kind=ResponseKind.X999
    )


def from_ta1(ack: TA1Acknowledgment) -> Verdict:
    reason = ack.failure_reason()
    if reason is None or ack.status is AckStatus.ACCEPTED:
        return Verdict(status=CheckStatus.SUBMITTED, response_kind=ResponseKind.TA1)
    return Verdict(
        status=CheckStatus.FAILED, error=reason, retryable=False, response_kind=ResponseKind.TA1
    )


def _parsed(response: EligibilityResponse) -> dict[str, Any]:
    return {
        "benefits": [_jsonable(b) for b in response.benefits],
        "plan": _plan(response),
        "rejects": [{**_jsonable(r), "text": r.text()} for r in response.rejects],
        "other_payers": [_jsonable(o) for o in response.other_payers],
    }


def _plan(response: EligibilityResponse) -> dict[str, Any]:
    """The plan the SPA shows: the patient's active plan-level line and the plan dates."""
    lines = plan_lines(response)
    names = [b.plan_description for b in lines if b.plan_description.strip()]
    insurance = next((b.insurance_type for b in lines if b.insurance_type), "")
    current = snapshot(response)
    payer = response.payer
    return {
        "name": names[0] if names else None,
        "begin": response.plan_begin.isoformat() if response.plan_begin else None,
        "end": response.plan_end.isoformat() if response.plan_end else None,
        "insurance_type": insurance or None,
        "plan_number": current.plan_number or None,
        "group_number": current.group_number or None,
        "payer_name": payer.last_name if payer else None,
    }


def _jsonable(value: object) -> dict[str, Any]:
    """A reader dataclass as JSON for a JSONB column (decimals as strings, dates ISO)."""
    data = to_jsonable_python(value)
    assert isinstance(data, dict)
    return data
