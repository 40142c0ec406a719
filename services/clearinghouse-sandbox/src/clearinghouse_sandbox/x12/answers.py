"""The X12 answers: a 005010X279A1 271 for each rule, a 005010X231A1 999, a TA1.

The 271 follows the guide's loop order (2000A payer, 2000B information receiver,
2000C subscriber, 2000D dependent when the 270 had one) and its segment order inside
2100C/D (NM1, REF, AAA, DMG, INS, DTP). What the rule changes (AAA, EB, plan dates,
a returned name or id) sits on the patient's level: 2100D/2110D when the patient is
a dependent, else 2100C/2110C; the one exception is ``SBX-BADID``'s AAA 72, which
stays on 2100C because the member id it refuses is the subscriber's. Plan dates go on the patient's 2100 loop rather than
on the EB lines, because an EB line's own dates say when that line applies: an EB*6
dated before the service date would no longer speak for the service date at all.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from clearinghouse_sandbox.rules import COVERAGE_RULES, Rule
from clearinghouse_sandbox.x12.inquiry import Envelope, Inquiry
from clearinghouse_sandbox.x12.tokens import Segment
from clearinghouse_sandbox.x12.writer import AnswerEnvelope, SegmentWriter, close_transaction

IMPLEMENTATION_271 = "005010X279A1"
IMPLEMENTATION_999 = "005010X231A1"

PLAN_DESCRIPTION = "SANDBOX GOLD PPO"
PLAN_NUMBER = "SBXGOLD01"
GROUP_NUMBER = "SBXGRP001"
GROUP_NAME = "SANDBOX EMPLOYER GROUP"
INSURANCE_TYPE = "PR"
"""EB04 ``PR``: preferred provider organization."""
COPAY = "25"
DEDUCTIBLE = "1500"
OTHER_PAYER_NAME = "OTHER HEALTH PLAN"
OTHER_PAYER_ID = "OTHER01"
OTHER_PAYER_POLICY = "OHP123456789"
PAYER_TRACE_ORIGINATOR = "9SANDBOXCH"
"""TRN03 of the sandbox's own TRN*1: '9' and a user-assigned id, ten characters."""
NEW_ID_SUFFIX = "-NEW"
RETURNED_FIRST_NAMES = ("CHRIS", "PAT")
"""``SBX-DEMOG`` returns the first of these unlike the name sent."""

INVALID_MEMBER_ID = ("N", "", "72", "C")
"""AAA 72 belongs to 2100C even for a dependent: the member id is the subscriber's."""
SUBSCRIBER_NOT_FOUND = ("N", "", "75", "C")
PATIENT_NOT_FOUND = ("N", "", "67", "C")
"""2100D has no code 75 (subscriber): 67 is "patient not found"."""


def build_271(inquiry: Inquiry, rule: Rule, envelope: AnswerEnvelope, *, today: date) -> str:
    """The whole interchange answering ``inquiry`` under ``rule``.

    ``today`` stands in for the service date when the 270 sent none.
    """
    w = SegmentWriter(inquiry.delimiters)
    at = envelope.at
    w.add("ST", "271", envelope.st02, IMPLEMENTATION_271)
    w.add(
        "BHT", "0022", "11", inquiry.reference or inquiry.trace_number, f"{at:%Y%m%d}", f"{at:%H%M}"
    )
    w.add("HL", "1", "", "20", "1")
    w.echo("NM1", inquiry.payer.elements)
    if rule is Rule.AAA42:
        w.add("AAA", "Y", "", "42", "R")
    w.add("HL", "2", "1", "21", "1")
    w.echo("NM1", inquiry.provider.elements)
    if rule is Rule.AAA79:
        w.add("AAA", "N", "", "79", "C")
    plan = _Plan.for_rule(rule, inquiry.service_date or today)
    patient = _Patient(inquiry, rule, plan, envelope.control_number)
    has_dependent = inquiry.dependent is not None
    w.add("HL", "3", "2", "22", "1" if has_dependent else "0")
    if has_dependent:
        _subscriber_above_dependent(w, inquiry, rule)
        w.add("HL", "4", "3", "23", "0")
    patient.write(w)
    return envelope.wrap_transaction("HB", IMPLEMENTATION_271, close_transaction(w, envelope.st02))


@dataclass(frozen=True, slots=True)
class _Plan:
    """The plan dates a rule reports, around the service date."""

    service_date: date
    begin: date
    end: date | None

    @classmethod
    def for_rule(cls, rule: Rule, day: date) -> _Plan:
        if rule is Rule.INACTIVE:
            # Ended on the last day of the month before the service date.
            end = day.replace(day=1) - timedelta(days=1)
            return cls(day, date(end.year, 1, 1), end)
        ends = day + timedelta(days=10) if rule is Rule.PLAN_ENDS else None
        return cls(day, date(day.year, 1, 1), ends)


def _subscriber_above_dependent(w: SegmentWriter, inquiry: Inquiry, rule: Rule) -> None:
    """2100C when the patient is a dependent: the subscriber's name and id, echoed."""
    w.echo("NM1", _returned_member_id(inquiry.subscriber.elements, rule))
    if rule is Rule.BAD_ID:
        w.add("AAA", *INVALID_MEMBER_ID)
    if inquiry.subscriber_demographics is not None:
        w.echo("DMG", inquiry.subscriber_demographics.elements)


@dataclass(frozen=True, slots=True)
class _Patient:
    """The patient's 2000/2100/2110 loops (C or D) for one rule."""

    inquiry: Inquiry
    rule: Rule
    plan: _Plan
    control_number: int

    @property
    def is_dependent(self) -> bool:
        return self.inquiry.dependent is not None

    def write(self, w: SegmentWriter) -> None:
        self._traces(w)
        w.echo("NM1", self._name())
        covered = self.rule in COVERAGE_RULES
        if covered:
            w.add("REF", "18", PLAN_NUMBER, PLAN_DESCRIPTION)
            w.add("REF", "6P", GROUP_NUMBER, GROUP_NAME)
        if (aaa := self._rejection()) is not None:
            w.add("AAA", *aaa)
        demographics = self._demographics()
        if demographics:
            w.echo("DMG", demographics)
        if self.rule in (Rule.DEMOGRAPHICS, Rule.NEW_ID):
            # INS03 001 / INS04 25: the payer changed identifying data we sent.
            w.add("INS", *(("N", "19") if self.is_dependent else ("Y", "18")), "001", "25")
        if covered:
            w.add("DTP", "346", "D8", _d8(self.plan.begin))
            if self.plan.end is not None:
                w.add("DTP", "347", "D8", _d8(self.plan.end))
        if self.inquiry.service_date is not None:
            w.add("DTP", "291", "D8", _d8(self.inquiry.service_date))
        if covered:
            self._benefits(w)

    def _rejection(self) -> tuple[str, ...] | None:
        if self.rule is Rule.NOT_FOUND:
            return PATIENT_NOT_FOUND if self.is_dependent else SUBSCRIBER_NOT_FOUND
        if self.rule is Rule.BAD_ID and not self.is_dependent:
            return INVALID_MEMBER_ID
        return None

    def _traces(self, w: SegmentWriter) -> None:
        """Our TRN*1 comes back as TRN*2 (referenced), then the payer's own TRN*1."""
        trace = self.inquiry.trace
        w.add("TRN", "2", trace.get(2), trace.get(3), trace.get(4))
        w.add("TRN", "1", f"SBX{self.control_number:09d}", PAYER_TRACE_ORIGINATOR)

    def _name(self) -> tuple[str, ...]:
        dependent = self.inquiry.dependent
        elements = (
            dependent.elements
            if dependent is not None
            else _returned_member_id(self.inquiry.subscriber.elements, self.rule)
        )
        if self.rule is Rule.DEMOGRAPHICS:
            sent = elements[3] if len(elements) > 3 else ""
            returned = next(n for n in RETURNED_FIRST_NAMES if n != sent.upper())
            elements = _with(elements, 4, returned)
        return elements

    def _demographics(self) -> tuple[str, ...]:
        inquiry = self.inquiry
        sent = (
            inquiry.dependent_demographics if self.is_dependent else inquiry.subscriber_demographics
        )
        if self.rule is not Rule.DEMOGRAPHICS:
            return sent.elements if sent is not None else ()
        return _other_birth_date(sent)

    def _benefits(self, w: SegmentWriter) -> None:
        inactive = self.rule is Rule.INACTIVE
        asked = [code for code in self.inquiry.service_types if code != "30"]
        types = w.repeat("30", *asked) if not inactive else "30"
        w.add("EB", "6" if inactive else "1", "IND", types, INSURANCE_TYPE, PLAN_DESCRIPTION)
        if inactive:
            return
        # EB06 27 per visit, 23 calendar year; EB12 Y in network.
        for info, period, amount in (("B", "27", COPAY), ("C", "23", DEDUCTIBLE)):
            line = ("EB", info, "IND", "30", INSURANCE_TYPE, PLAN_DESCRIPTION, period, amount)
            w.add(*line, "", "", "", "", "Y")
        if self.rule is Rule.OTHER_PAYER:
            self._other_payer(w)

    def _other_payer(self, w: SegmentWriter) -> None:
        """EB*R (other or additional payer) with the policy, the coordination date and
        a 2120 NM1*PRP naming the other payer as primary."""
        w.add("EB", "R", "IND", "30", "C1")
        w.add("REF", "IG", OTHER_PAYER_POLICY)
        w.add("DTP", "290", "D8", _d8(self.plan.begin))
        w.add("LS", "2120")
        w.add("NM1", "PRP", "2", OTHER_PAYER_NAME, "", "", "", "", "PI", OTHER_PAYER_ID)
        w.add("LE", "2120")


def _returned_member_id(elements: tuple[str, ...], rule: Rule) -> tuple[str, ...]:
    """The subscriber's NM1 as sent, or with a new NM109 under ``SBX-NEWID``."""
    if rule is not Rule.NEW_ID:
        return elements
    sent = elements[8] if len(elements) > 8 else ""
    return _with(elements, 9, (sent + NEW_ID_SUFFIX)[:80])


def _other_birth_date(sent: Segment | None) -> tuple[str, ...]:
    """A DMG whose date of birth is a day after the one sent (a fixed one if none was)."""
    born = date(1970, 1, 1)
    if sent is not None and sent.get(1) == "D8":
        with contextlib.suppress(ValueError):
            born = datetime.strptime(sent.get(2), "%Y%m%d").date()
    gender = sent.get(3) if sent is not None else ""
    return ("D8", _d8(born + timedelta(days=1)), gender)


def _with(elements: tuple[str, ...], index: int, value: str) -> tuple[str, ...]:
    """``elements`` with element ``index`` (1-based) set, padded as needed."""
    padded = list(elements) + [""] * max(0, index - len(elements))
    padded[index - 1] = value
    return tuple(padded)


def _d8(day: date) -> str:
    return f"{day:%Y%m%d}"


def build_999(
    received: Envelope,
    envelope: AnswerEnvelope,
    *,
    set_id: str,
    control_number: str,
    accepted: bool,
    ik5_code: str = "",
    segment: tuple[str, int, str, str] | None = None,
    element: tuple[str, str, str] | None = None,
    bad_value: str = "",
) -> str:
    """A 999 on the first transaction set of ``received``: AK1 quotes its GS01/GS06/GS08,
    AK2 its ST01/ST02, IK3/IK4 point at the segment and element in error."""
    w = SegmentWriter(received.delimiters)
    gs = received.gs
    version = gs.get(8) if gs else ""
    w.add("ST", "999", envelope.st02, IMPLEMENTATION_999)
    w.add("AK1", gs.get(1) if gs else "HS", received.group_control_number, version)
    w.add("AK2", set_id, control_number, version)
    if segment is not None:
        segment_id, position, loop, code = segment
        w.add("IK3", segment_id, str(position), loop, code)
    if element is not None:
        w.add("IK4", *element, bad_value)
    code = "A" if accepted else "R"
    w.add("IK5", code, "" if accepted else ik5_code)
    w.add("AK9", code, "1", "1", "1" if accepted else "0")
    return envelope.wrap_transaction("FA", IMPLEMENTATION_999, close_transaction(w, envelope.st02))


def build_ta1(envelope: AnswerEnvelope, received_isa: Segment | None, note_code: str) -> str:
    """An interchange holding only a TA1 rejecting the received one (TA101 its ISA13,
    TA102/TA103 its ISA09/ISA10); IEA01 is 0, as there is no functional group."""
    d = envelope.delimiters
    control = received_isa.get(13).strip() if received_isa else ""
    day = received_isa.get(9) if received_isa else ""
    time = received_isa.get(10) if received_isa else ""
    ta1 = d.element.join(
        (
            "TA1",
            control or "000000000",
            day or f"{envelope.at:%y%m%d}",
            time or f"{envelope.at:%H%M}",
            "R",
            note_code,
        )
    )
    return envelope.join([envelope.isa(), ta1, envelope.iea(0)])
