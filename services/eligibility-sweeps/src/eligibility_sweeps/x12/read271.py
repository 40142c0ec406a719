"""Reader for the 005010X279A1 271 eligibility response.

Written here rather than taken from x12sdk/linuxforhealth, which reject
subscriber-level AAA codes (72, 73, 75, 42) and mistake ``EB*R`` (other or
additional payer) for "American Red Cross": exactly the answers a sweep needs.

The 271 is walked once with the loop state the guide defines: ``HL03`` says which
2000 loop we are in (20 payer, 21 provider, 22 subscriber, 23 dependent), the
``NM1`` after it opens the 2100 loop, each ``EB`` opens a 2110 loop, and an
``NM1`` after an ``EB`` (with or without ``LS*2120``) is a 2120 benefit entity.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from eligibility_sweeps.x12 import codes
from eligibility_sweeps.x12.segments import (
    Interchange,
    Segment,
    Transaction,
    X12Error,
    parse_interchange,
)

SUPPORTED_VERSION = "005010X279A1"

_LEVELS = {"20": "A", "21": "B", "22": "C", "23": "D"}
# DTP qualifiers bounding a plan or an eligibility period, start or end.
_BEGIN_QUALIFIERS = frozenset({"346", "348", "356"})
_END_QUALIFIERS = frozenset({"347", "349", "357"})
_PERIOD_QUALIFIERS = frozenset({"291", "292", "307"})


class CoverageStatus(StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    NOT_FOUND = "NOT_FOUND"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True, slots=True)
class DatePeriod:
    """A ``DTP``: one date (``D8``) or a range (``RD8``); ``raw`` keeps DTP03 as sent."""

    qualifier: str
    start: date | None
    end: date | None
    raw: str

    def contains(self, day: date) -> bool:
        return (self.start is None or self.start <= day) and (self.end is None or day <= self.end)


@dataclass(frozen=True, slots=True)
class Reference:
    """A ``REF``: qualifier (``IG`` insurance policy number, ``18`` plan, ``6P`` group...)."""

    qualifier: str
    value: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class Trace:
    """A ``TRN``. In a 271, type ``2`` echoes the trace we put in the 270; ``1`` is the payer's."""

    type_code: str
    number: str
    originator_id: str
    secondary: str = ""


@dataclass(frozen=True, slots=True)
class Reject:
    """An ``AAA`` with the loop it came from and its codes in words."""

    loop: str
    valid_request: bool | None
    """AAA01: ``Y`` the request was valid but is rejected, ``N`` it was invalid."""
    reason_code: str
    reason: str
    follow_up_code: str
    follow_up: str

    def text(self) -> str:
        """``AAA 75: Subscriber/Insured Not Found``: the form used in failure reasons."""
        return f"AAA {self.reason_code}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Entity:
    """An ``NM1``: payer, provider, subscriber, dependent or a 2120 benefit entity."""

    entity_code: str
    entity_type: str
    last_name: str
    first_name: str = ""
    middle_name: str = ""
    suffix: str = ""
    id_qualifier: str = ""
    id: str = ""


@dataclass(frozen=True, slots=True)
class InsuredFlags:
    """An ``INS``. INS03 ``001`` with INS04 ``25`` means the payer changed identifying
    data (name, id, date of birth) against what the 270 sent."""

    subscriber: str
    relationship: str
    maintenance_type: str
    maintenance_reason: str

    @property
    def changed(self) -> bool:
        return self.maintenance_type == "001"


@dataclass(frozen=True, slots=True)
class Member:
    """The subscriber (2000C/2100C) or dependent (2000D/2100D) as the payer sent it back."""

    loop: str
    name: Entity | None
    birth_date: date | None
    gender: str
    insured: InsuredFlags | None
    references: tuple[Reference, ...]
    dates: tuple[DatePeriod, ...]
    traces: tuple[Trace, ...]

    @property
    def member_id(self) -> str:
        return self.name.id if self.name else ""


@dataclass(frozen=True, slots=True)
class Benefit:
    """One ``EB`` (a 2110C/2110D loop) with the segments that qualify it."""

    loop: str
    info_code: str
    info: str
    coverage_level: str
    service_types: tuple[str, ...]
    insurance_type: str
    plan_description: str
    time_period: str
    amount: Decimal | None
    percent: Decimal | None
    quantity_qualifier: str
    quantity: Decimal | None
    authorization_required: str
    in_network: str
    """EB12: ``Y`` in network, ``N`` out of network, ``W`` not applicable, ``U`` unknown."""
    dates: tuple[DatePeriod, ...] = ()
    messages: tuple[str, ...] = ()
    references: tuple[Reference, ...] = ()
    entities: tuple[Entity, ...] = ()

    def applies_on(self, day: date) -> bool:
        """False only when the line's own DTPs put ``day`` outside its period."""
        begin, end = _bounds(self.dates)
        return (begin is None or begin <= day) and (end is None or day <= end)


@dataclass(frozen=True, slots=True)
class OtherPayer:
    """An ``EB*R`` line: another payer that may be primary, and how to reach it."""

    benefit: Benefit
    name: str
    entity_code: str
    id_qualifier: str
    id: str
    policy_number: str
    coordination_date: DatePeriod | None


@dataclass(frozen=True, slots=True)
class EligibilityResponse:
    """Everything a check stores from one 271 transaction set."""

    interchange_control_number: str
    sender_id: str
    receiver_id: str
    group_control_number: str
    version: str
    transaction_control_number: str
    bht_reference: str
    bht_date: date | None
    payer: Entity | None
    provider: Entity | None
    subscriber: Member | None
    dependent: Member | None
    benefits: tuple[Benefit, ...]
    rejects: tuple[Reject, ...]
    other_payers: tuple[OtherPayer, ...]
    service_date: date | None
    coverage_status: CoverageStatus
    warnings: tuple[str, ...]

    @property
    def patient(self) -> Member | None:
        """The dependent when the 271 has one, else the subscriber."""
        return self.dependent or self.subscriber

    @property
    def trace_numbers(self) -> tuple[str, ...]:
        """Our 270 trace numbers echoed back (TRN01 ``2``), to match the check."""
        members = [m for m in (self.subscriber, self.dependent) if m]
        return tuple(t.number for m in members for t in m.traces if t.type_code == "2")

    @property
    def plan_begin(self) -> date | None:
        return _bounds(self._plan_dates())[0]

    @property
    def plan_end(self) -> date | None:
        return _bounds(self._plan_dates())[1]

    def _plan_dates(self) -> tuple[DatePeriod, ...]:
        patient = self.patient
        dates = patient.dates if patient else ()
        if not dates and self.subscriber:
            dates = self.subscriber.dates
        return tuple(d for d in dates if d.qualifier != "291" or d.start != d.end)


class Outcome(StrEnum):
    RECEIVED = "RECEIVED"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class ResponseOutcome:
    """What a readable 271 means for the check (issue 4, "Outcomes")."""

    status: Outcome
    retryable: bool
    reason: str | None


def response_outcome(response: EligibilityResponse) -> ResponseOutcome:
    """A readable 271 is RECEIVED whatever it says, with two exceptions.

    AAA 79 (invalid participant identification, at 2000A/2100A/2100B) means our
    submitter, provider or payer id is configured wrong: FAILED, not retryable,
    because resending the same 270 cannot help. It wins over 42/80 when a payer
    sends both. AAA 42/80 (the payer cannot answer now): FAILED and retryable.
    """
    for wanted, retryable in (
        (codes.CONFIGURATION_REASONS, False),
        (codes.RETRY_LATER_REASONS, True),
    ):
        for reject in response.rejects:
            if reject.reason_code in wanted:
                return ResponseOutcome(Outcome.FAILED, retryable, reject.text())
    return ResponseOutcome(Outcome.RECEIVED, False, None)


def parse_271(text: str, *, service_date: date | None = None) -> EligibilityResponse:
    """Read the first 271 of ``text``.

    ``service_date`` is the date of service the 270 asked about; without it the
    271's own ``DTP*291`` is used, and without that every EB line counts.
    """
    responses = parse_271_all(text, service_date=service_date)
    return responses[0]


def parse_271_all(
    text: str, *, service_date: date | None = None
) -> tuple[EligibilityResponse, ...]:
    """Every 271 transaction set of a (batch) interchange."""
    interchange = parse_interchange(text)
    _refuse_4010(interchange)
    found = [
        (group, transaction)
        for group in interchange.groups
        for transaction in group.transactions
        if transaction.set_id == "271"
    ]
    if not found:
        raise X12Error(f"Expected a 271 eligibility response, got {_describe_content(interchange)}")
    return tuple(
        _read_transaction(
            interchange, group.control_number, group.version, transaction, service_date
        )
        for group, transaction in found
    )


def _refuse_4010(interchange: Interchange) -> None:
    versions = [g.version for g in interchange.groups]
    old = next((v for v in versions if v.startswith("004")), None)
    if old is not None or interchange.version.startswith("004"):
        shown = old or f"ISA12 {interchange.version}"
        raise X12Error(f"The file is X12 4010 ({shown}); only {SUPPORTED_VERSION} is supported")


def _describe_content(interchange: Interchange) -> str:
    sets = [t.set_id for g in interchange.groups for t in g.transactions]
    if sets:
        return "transaction set " + ", ".join(sorted(set(sets)))
    if interchange.find("TA1"):
        return "a TA1 interchange acknowledgment"
    return "no transaction set"


@dataclass
class _MemberDraft:
    loop: str
    name: Entity | None = None
    birth_date: date | None = None
    gender: str = ""
    insured: InsuredFlags | None = None
    references: list[Reference] = field(default_factory=list)
    dates: list[DatePeriod] = field(default_factory=list)
    traces: list[Trace] = field(default_factory=list)

    def freeze(self) -> Member:
        return Member(
            loop=self.loop,
            name=self.name,
            birth_date=self.birth_date,
            gender=self.gender,
            insured=self.insured,
            references=tuple(self.references),
            dates=tuple(self.dates),
            traces=tuple(self.traces),
        )


@dataclass
class _BenefitDraft:
    eb: Benefit
    dates: list[DatePeriod] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    entities: list[Entity] = field(default_factory=list)

    def freeze(self) -> Benefit:
        eb = self.eb
        return Benefit(
            loop=eb.loop,
            info_code=eb.info_code,
            info=eb.info,
            coverage_level=eb.coverage_level,
            service_types=eb.service_types,
            insurance_type=eb.insurance_type,
            plan_description=eb.plan_description,
            time_period=eb.time_period,
            amount=eb.amount,
            percent=eb.percent,
            quantity_qualifier=eb.quantity_qualifier,
            quantity=eb.quantity,
            authorization_required=eb.authorization_required,
            in_network=eb.in_network,
            dates=tuple(self.dates),
            messages=tuple(self.messages),
            references=tuple(self.references),
            entities=tuple(self.entities),
        )


@dataclass
class _Walk:
    """Loop state while walking one 271 transaction set."""

    level: str = ""
    named: bool = False
    payer: Entity | None = None
    provider: Entity | None = None
    members: dict[str, _MemberDraft] = field(default_factory=dict)
    benefit: _BenefitDraft | None = None
    benefits: list[Benefit] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    bht: Segment | None = None
    warnings: list[str] = field(default_factory=list)

    def member(self) -> _MemberDraft | None:
        return self.members.get(self.level)

    def close_benefit(self) -> None:
        if self.benefit is not None:
            self.benefits.append(self.benefit.freeze())
            self.benefit = None

    def loop(self, prefix: str) -> str:
        return f"{prefix}{self.level}" if self.level else prefix


def _read_transaction(
    interchange: Interchange,
    group_control_number: str,
    version: str,
    transaction: Transaction,
    service_date: date | None,
) -> EligibilityResponse:
    walk = _Walk()
    for segment in transaction.segments:
        _visit(walk, segment)
    walk.close_benefit()
    warnings = [*interchange.warnings, *_version_warnings(version, transaction), *walk.warnings]
    subscriber = walk.members["C"].freeze() if "C" in walk.members else None
    dependent = walk.members["D"].freeze() if "D" in walk.members else None
    benefits = tuple(walk.benefits)
    rejects = tuple(walk.rejects)
    day = service_date or _echoed_service_date(dependent or subscriber)
    return EligibilityResponse(
        interchange_control_number=interchange.control_number,
        sender_id=interchange.sender_id,
        receiver_id=interchange.receiver_id,
        group_control_number=group_control_number,
        version=version,
        transaction_control_number=transaction.control_number,
        bht_reference=walk.bht.get(3) if walk.bht else "",
        bht_date=_parse_date(walk.bht.get(4)) if walk.bht else None,
        payer=walk.payer,
        provider=walk.provider,
        subscriber=subscriber,
        dependent=dependent,
        benefits=benefits,
        rejects=rejects,
        other_payers=tuple(_other_payer(b) for b in benefits if b.info_code == "R"),
        service_date=day,
        coverage_status=_coverage_status(benefits, rejects, dependent is not None, day),
        warnings=tuple(warnings),
    )


def _version_warnings(version: str, transaction: Transaction) -> list[str]:
    if version == SUPPORTED_VERSION:
        return []
    if version == "005010X279":
        # Seen in the wild (OopFactory sample): the A1 addendum left off. The
        # 271 layout is the same, so read it and say so.
        return [f"GS08 {version} lacks the A1 addendum; read as {SUPPORTED_VERSION}"]
    return [f"GS08 {version or 'is empty'}; read as {SUPPORTED_VERSION}"]


def _visit(walk: _Walk, segment: Segment) -> None:
    handler = _HANDLERS.get(segment.id)
    if handler is not None:
        handler(walk, segment)


def _on_hl(walk: _Walk, segment: Segment) -> None:
    walk.close_benefit()
    walk.level = _LEVELS.get(segment.get(3), "")
    walk.named = False
    if walk.level in ("C", "D"):
        if walk.level in walk.members:
            # A batch-style 271 with several subscribers in one ST: we keep the
            # first, the one a real-time 270 asked about.
            walk.warnings.append(f"More than one HL{segment.get(3)} loop; only the first is read")
        else:
            walk.members[walk.level] = _MemberDraft(loop=f"2100{walk.level}")


def _on_nm1(walk: _Walk, segment: Segment) -> None:
    entity = _entity(segment)
    if walk.benefit is not None:
        walk.benefit.entities.append(entity)
        return
    walk.named = True
    if walk.level == "A":
        walk.payer = entity
    elif walk.level == "B":
        walk.provider = entity
    elif (member := walk.member()) is not None and member.name is None:
        member.name = entity


def _on_aaa(walk: _Walk, segment: Segment) -> None:
    prefix = "2110" if walk.benefit is not None else "2100" if walk.named else "2000"
    valid = {"Y": True, "N": False}.get(segment.get(1))
    walk.rejects.append(
        Reject(
            loop=walk.loop(prefix),
            valid_request=valid,
            reason_code=segment.get(3),
            reason=codes.describe(codes.AAA_REJECT_REASONS, segment.get(3)),
            follow_up_code=segment.get(4),
            follow_up=codes.describe(codes.AAA_FOLLOW_UP_ACTIONS, segment.get(4)),
        )
    )


def _on_eb(walk: _Walk, segment: Segment) -> None:
    walk.close_benefit()
    walk.benefit = _BenefitDraft(eb=_benefit(walk.loop("2110"), segment))


def _on_dtp(walk: _Walk, segment: Segment) -> None:
    period = _date_period(segment)
    if walk.benefit is not None:
        walk.benefit.dates.append(period)
    elif (member := walk.member()) is not None:
        member.dates.append(period)


def _on_ref(walk: _Walk, segment: Segment) -> None:
    reference = Reference(segment.get(1), segment.get(2), segment.get(3))
    if walk.benefit is not None:
        walk.benefit.references.append(reference)
    elif (member := walk.member()) is not None:
        member.references.append(reference)


def _on_msg(walk: _Walk, segment: Segment) -> None:
    if walk.benefit is not None:
        walk.benefit.messages.append(segment.get(1))


def _on_trn(walk: _Walk, segment: Segment) -> None:
    if (member := walk.member()) is not None:
        trace = Trace(segment.get(1), segment.get(2), segment.get(3), segment.get(4))
        member.traces.append(trace)


def _on_dmg(walk: _Walk, segment: Segment) -> None:
    if walk.benefit is None and (member := walk.member()) is not None:
        member.birth_date = _parse_date(segment.get(2)) if segment.get(1) == "D8" else None
        member.gender = segment.get(3)


def _on_ins(walk: _Walk, segment: Segment) -> None:
    if walk.benefit is None and (member := walk.member()) is not None:
        member.insured = InsuredFlags(
            segment.get(1), segment.get(2), segment.get(3), segment.get(4)
        )


def _on_bht(walk: _Walk, segment: Segment) -> None:
    walk.bht = segment


_HANDLERS = {
    "HL": _on_hl,
    "NM1": _on_nm1,
    "AAA": _on_aaa,
    "EB": _on_eb,
    "DTP": _on_dtp,
    "REF": _on_ref,
    "MSG": _on_msg,
    "TRN": _on_trn,
    "DMG": _on_dmg,
    "INS": _on_ins,
    "BHT": _on_bht,
}


def _entity(segment: Segment) -> Entity:
    return Entity(
        entity_code=segment.get(1),
        entity_type=segment.get(2),
        last_name=segment.get(3),
        first_name=segment.get(4),
        middle_name=segment.get(5),
        suffix=segment.get(7),
        id_qualifier=segment.get(8),
        id=segment.get(9),
    )


def _benefit(loop: str, segment: Segment) -> Benefit:
    return Benefit(
        loop=loop,
        info_code=segment.get(1),
        info=codes.describe(codes.EB_INFO_CODES, segment.get(1)),
        coverage_level=segment.get(2),
        service_types=segment.repeats(3),
        insurance_type=segment.get(4),
        plan_description=segment.get(5),
        time_period=segment.get(6),
        amount=_decimal(segment.get(7)),
        percent=_decimal(segment.get(8)),
        quantity_qualifier=segment.get(9),
        quantity=_decimal(segment.get(10)),
        authorization_required=segment.get(11),
        in_network=segment.get(12),
    )


def _other_payer(benefit: Benefit) -> OtherPayer:
    # The guide names the other payer with NM1*PRP (primary payer); payers also use
    # PR or other entity codes, so take PRP first and any 2120 entity otherwise.
    entities = sorted(benefit.entities, key=lambda e: e.entity_code != "PRP")
    entity = entities[0] if entities else None
    policy = next((r.value for r in benefit.references if r.qualifier == "IG"), "")
    coordination = next((d for d in benefit.dates if d.qualifier == "290"), None)
    return OtherPayer(
        benefit=benefit,
        name=entity.last_name if entity else "",
        entity_code=entity.entity_code if entity else "",
        id_qualifier=entity.id_qualifier if entity else "",
        id=entity.id if entity else "",
        policy_number=policy,
        coordination_date=coordination,
    )


def _coverage_status(
    benefits: tuple[Benefit, ...],
    rejects: tuple[Reject, ...],
    has_dependent: bool,
    day: date | None,
) -> CoverageStatus:
    """Coverage on ``day``: NOT_FOUND from a person-level AAA, else from EB01.

    An EB line counts unless its own dates exclude the day. Lines for health
    benefit plan coverage (EB03 ``30``) or for no service type speak for the plan
    and are preferred; an EB*6 for one service beside an EB*1 for the plan is a
    carve-out, not an inactive policy.
    """
    person_loops = {"2100C", "2100D"}
    if any(r.loop in person_loops and r.reason_code in codes.NOT_FOUND_REASONS for r in rejects):
        return CoverageStatus.NOT_FOUND
    patient_loop = "2110D" if has_dependent else "2110C"
    status_codes = codes.ACTIVE_INFO_CODES | codes.INACTIVE_INFO_CODES
    lines = [
        b for b in benefits if b.info_code in status_codes and (day is None or b.applies_on(day))
    ]
    lines = [b for b in lines if b.loop == patient_loop] or lines
    lines = [b for b in lines if not b.service_types or "30" in b.service_types] or lines
    if any(b.info_code in codes.ACTIVE_INFO_CODES for b in lines):
        return CoverageStatus.ACTIVE
    if lines:
        return CoverageStatus.INACTIVE
    return CoverageStatus.UNKNOWN


def _echoed_service_date(member: Member | None) -> date | None:
    if member is None:
        return None
    return next((d.start for d in member.dates if d.qualifier == "291" and d.start == d.end), None)


def _bounds(dates: Iterable[DatePeriod]) -> tuple[date | None, date | None]:
    """The narrowest [begin, end] the plan/eligibility DTPs of a loop describe."""
    begins: list[date] = []
    ends: list[date] = []
    for period in dates:
        if period.qualifier in _BEGIN_QUALIFIERS and period.start:
            begins.append(period.start)
        elif period.qualifier in _END_QUALIFIERS and period.end:
            ends.append(period.end)
        elif period.qualifier in _PERIOD_QUALIFIERS:
            if period.start:
                begins.append(period.start)
            if period.end and period.end != period.start:
                ends.append(period.end)
    return (max(begins) if begins else None, min(ends) if ends else None)


def _date_period(segment: Segment) -> DatePeriod:
    qualifier, form, raw = segment.get(1), segment.get(2), segment.get(3)
    if form == "RD8" and "-" in raw:
        first, _, last = raw.partition("-")
        return DatePeriod(qualifier, _parse_date(first), _parse_date(last), raw)
    day = _parse_date(raw) if form == "D8" else None
    return DatePeriod(qualifier, day, day, raw)


def _parse_date(value: str) -> date | None:
    """A CCYYMMDD date, or None when absent or malformed (kept raw by the caller)."""
    try:
        return datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        return None


def _decimal(value: str) -> Decimal | None:
    if not value:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None
