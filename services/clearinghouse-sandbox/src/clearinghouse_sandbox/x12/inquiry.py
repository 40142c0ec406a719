"""Read a 005010X279A1 270 into what the sandbox needs to answer it.

The reader checks what a clearinghouse's front door checks and no more: a usable
interchange envelope (else a TA1), one 270 transaction set with matching trailers
(else a 999), and the segments an answer has to echo (payer, provider, subscriber,
trace). Everything else (field lengths, code lists) is the product's own tests' job,
with pyx12; a sandbox that refused more would only hide the answers under test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from clearinghouse_sandbox.x12.tokens import (
    Delimiters,
    Interchange,
    InterchangeRejected,
    Segment,
    tokenize,
)

SUPPORTED_VERSION = "00501"

_LEVEL_SUBSCRIBER = "22"
_LEVEL_DEPENDENT = "23"


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """The ISA and GS of a received interchange: what every answer swaps or quotes."""

    delimiters: Delimiters
    isa: Segment
    gs: Segment | None

    @property
    def sender_qualifier(self) -> str:
        return self.isa.get(5).strip()

    @property
    def sender_id(self) -> str:
        return self.isa.get(6).strip()

    @property
    def receiver_qualifier(self) -> str:
        return self.isa.get(7).strip()

    @property
    def receiver_id(self) -> str:
        return self.isa.get(8).strip()

    @property
    def interchange_control_number(self) -> str:
        return self.isa.get(13).strip()

    @property
    def usage_indicator(self) -> str:
        return self.isa.get(15).strip() or "T"

    @property
    def group_control_number(self) -> str:
        return self.gs.get(6) if self.gs else ""


class TransactionRejected(ValueError):
    """The envelope is fine but the transaction set is not: answered with a 999.

    ``ik5_code`` is the IK502 reason; ``segment`` (IK3: id, position, loop, code)
    and ``element`` (IK4: position, reference, code) point at the culprit when known.
    """

    def __init__(
        self,
        message: str,
        *,
        envelope: Envelope,
        set_id: str,
        control_number: str,
        ik5_code: str,
        segment: tuple[str, int, str, str] | None = None,
        element: tuple[str, str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.envelope = envelope
        self.set_id = set_id
        self.control_number = control_number
        self.ik5_code = ik5_code
        self.segment = segment
        self.element = element


@dataclass(frozen=True, slots=True, kw_only=True)
class Inquiry:
    """One readable 270. Segments are kept as sent, so the answer echoes them exactly."""

    envelope: Envelope
    transaction_control_number: str
    implementation: str
    reference: str
    """BHT03."""
    payer: Segment
    provider: Segment
    subscriber: Segment
    subscriber_demographics: Segment | None
    subscriber_position: int
    """Position of the subscriber's NM1 in the transaction set (ST is 1), for an IK3."""
    dependent: Segment | None
    dependent_demographics: Segment | None
    trace: Segment
    service_date: date | None
    service_types: tuple[str, ...]

    @property
    def subscriber_id(self) -> str:
        return self.subscriber.get(9)

    @property
    def trace_number(self) -> str:
        return self.trace.get(2)

    @property
    def delimiters(self) -> Delimiters:
        return self.envelope.delimiters


def read_envelope(text: str) -> tuple[Envelope, Interchange]:
    """The interchange's envelope, checked; raises ``NotX12`` or ``InterchangeRejected``."""
    interchange = tokenize(text)
    isa = interchange.isa
    problem = _isa_problem(isa) or _trailer_problem(isa, interchange.segments)
    if problem is not None:
        note_code, message = problem
        raise InterchangeRejected(note_code, message, isa, interchange.delimiters)
    gs = next(s for s in interchange.segments if s.id == "GS")
    return Envelope(delimiters=interchange.delimiters, isa=isa, gs=gs), interchange


def _isa_problem(isa: Segment) -> tuple[str, str] | None:
    """The TA1 note code and why, for an ISA the sandbox cannot answer normally."""
    control = isa.get(13)
    checks = (
        (len(isa.elements) != 16, "022", "ISA: must have 16 elements"),
        (isa.get(12) != SUPPORTED_VERSION, "017", f"ISA12: only {SUPPORTED_VERSION} is read"),
        (len(control) != 9 or not control.isdigit(), "018", "ISA13: must be 9 digits"),
        (not isa.get(6).strip(), "006", "ISA06: the sender id is empty"),
        (not isa.get(8).strip(), "008", "ISA08: the receiver id is empty"),
    )
    return next(((code, message) for failed, code, message in checks if failed), None)


def _trailer_problem(isa: Segment, segments: Sequence[Segment]) -> tuple[str, str] | None:
    ieas = [s for s in segments if s.id == "IEA"]
    if not ieas:
        return "023", "IEA: the interchange trailer is missing"
    if ieas[-1].get(2).strip() != isa.get(13).strip():
        return "001", "IEA02 does not match ISA13"
    if not any(s.id == "GS" for s in segments):
        return "024", "GS: the interchange holds no functional group"
    return None


def read_270(text: str) -> Inquiry:
    """The first 270 of ``text``.

    Raises ``NotX12`` (no ISA), ``InterchangeRejected`` (answer a TA1) or
    ``TransactionRejected`` (answer a 999).
    """
    envelope, interchange = read_envelope(text)
    transaction = _first_transaction(envelope, interchange.segments)
    return _read_transaction(envelope, transaction)


def _first_transaction(envelope: Envelope, segments: Sequence[Segment]) -> list[Segment]:
    """ST..SE of the first transaction set, trailer checked; positions renumbered from ST."""
    start = next((i for i, s in enumerate(segments) if s.id == "ST"), None)
    if start is None:
        raise InterchangeRejected(
            "024",
            "ST: the functional group holds no transaction set",
            envelope.isa,
            envelope.delimiters,
        )
    st = segments[start]
    set_id, control = st.get(1), st.get(2)

    def reject(message: str, code: str) -> TransactionRejected:
        return TransactionRejected(
            message, envelope=envelope, set_id=set_id, control_number=control, ik5_code=code
        )

    if set_id != "270":
        raise reject(f"ST01: transaction set {set_id or '(empty)'} is not supported", "1")
    end = next((i for i in range(start, len(segments)) if segments[i].id == "SE"), None)
    if end is None:
        raise reject("SE: the transaction set trailer is missing", "2")
    se = segments[end]
    if se.get(2) != control:
        raise reject("SE02 does not match ST02", "3")
    found = end - start + 1
    if se.get(1) != str(found):
        raise reject(f"SE01 says {se.get(1) or '(empty)'} segments, the set has {found}", "4")
    return [
        Segment(s.id, s.elements, position)
        for position, s in enumerate(segments[start : end + 1], start=1)
    ]


@dataclass
class _Walk:
    """Loop state while walking the 270: which HL level the segments belong to."""

    level: str = ""
    payer: Segment | None = None
    provider: Segment | None = None
    subscriber: Segment | None = None
    subscriber_dmg: Segment | None = None
    subscriber_hl: Segment | None = None
    dependent: Segment | None = None
    dependent_dmg: Segment | None = None
    trace: Segment | None = None
    trace_level: str = ""
    service_date: date | None = None
    service_types: tuple[str, ...] = ()
    bht: Segment | None = None


def _read_transaction(envelope: Envelope, segments: list[Segment]) -> Inquiry:
    walk = _Walk()
    for segment in segments:
        _visit(walk, segment, envelope.delimiters)
    st = segments[0]
    required = _Required(envelope, st, segments[-1])
    payer = required.segment(walk.payer, "NM1", "2100A", after=None)
    provider = required.segment(walk.provider, "NM1", "2100B", after=payer)
    subscriber = required.segment(walk.subscriber, "NM1", "2100C", after=walk.subscriber_hl)
    patient_loop = "2000D" if walk.dependent is not None else "2000C"
    trace = required.segment(walk.trace, "TRN", patient_loop, after=subscriber)
    if not subscriber.get(9):
        raise required.element(subscriber, "2100C", position="9", reference="67")
    if not trace.get(2):
        raise required.element(trace, patient_loop, position="2", reference="127")
    return Inquiry(
        envelope=envelope,
        transaction_control_number=st.get(2),
        implementation=st.get(3),
        reference=walk.bht.get(3) if walk.bht else "",
        payer=payer,
        provider=provider,
        subscriber=subscriber,
        subscriber_demographics=walk.subscriber_dmg,
        subscriber_position=subscriber.position,
        dependent=walk.dependent,
        dependent_demographics=walk.dependent_dmg,
        trace=trace,
        service_date=walk.service_date,
        service_types=walk.service_types,
    )


def _visit(walk: _Walk, segment: Segment, delimiters: Delimiters) -> None:
    if segment.id == "HL":
        walk.level = segment.get(3)
        if walk.level == _LEVEL_SUBSCRIBER:
            walk.subscriber_hl = segment
    elif segment.id == "BHT":
        walk.bht = segment
    elif segment.id == "NM1":
        _on_name(walk, segment)
    elif segment.id == "DMG":
        if walk.level == _LEVEL_DEPENDENT:
            walk.dependent_dmg = segment
        elif walk.level == _LEVEL_SUBSCRIBER:
            walk.subscriber_dmg = segment
    elif segment.id == "TRN" and walk.level in (_LEVEL_SUBSCRIBER, _LEVEL_DEPENDENT):
        # The patient's first TRN is ours: a dependent's wins over one at the subscriber.
        dependent_first = walk.level == _LEVEL_DEPENDENT and walk.trace_level != _LEVEL_DEPENDENT
        if walk.trace is None or dependent_first:
            walk.trace, walk.trace_level = segment, walk.level
    elif segment.id == "DTP" and segment.get(1) == "291":
        walk.service_date = _service_date(segment) or walk.service_date
    elif segment.id == "EQ":
        walk.service_types += _repeats(segment.get(1), delimiters)


def _on_name(walk: _Walk, segment: Segment) -> None:
    entity = segment.get(1)
    if entity == "PR" and walk.payer is None:
        walk.payer = segment
    elif walk.level == "21" and walk.provider is None:
        walk.provider = segment
    elif entity == "IL" and walk.subscriber is None:
        walk.subscriber = segment
    elif walk.level == _LEVEL_DEPENDENT and walk.dependent is None:
        walk.dependent = segment


def _repeats(value: str, delimiters: Delimiters) -> tuple[str, ...]:
    if not value:
        return ()
    if delimiters.repetition is None:
        return (value,)
    return tuple(part for part in value.split(delimiters.repetition) if part)


def _service_date(segment: Segment) -> date | None:
    """DTP03 as a D8 date, or the first day of an RD8 range; ``None`` if unreadable."""
    value = segment.get(3)
    if segment.get(2) == "RD8":
        value = value.partition("-")[0]
    try:
        return datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Required:
    """Turns a missing segment or element into the 999 that names it."""

    envelope: Envelope
    st: Segment
    se: Segment

    def segment(
        self, found: Segment | None, segment_id: str, loop: str, *, after: Segment | None
    ) -> Segment:
        if found is not None:
            return found
        # IK302 is where the segment was expected: right after the one it follows.
        position = after.position + 1 if after is not None else self.se.position
        raise TransactionRejected(
            f"{segment_id} ({loop}): required segment missing",
            envelope=self.envelope,
            set_id=self.st.get(1),
            control_number=self.st.get(2),
            ik5_code="5",
            segment=(segment_id, position, _loop_id(loop), "3"),
        )

    def element(
        self, segment: Segment, loop: str, *, position: str, reference: str
    ) -> TransactionRejected:
        return TransactionRejected(
            f"{segment.id}{int(position):02d} ({loop}): required element missing",
            envelope=self.envelope,
            set_id=self.st.get(1),
            control_number=self.st.get(2),
            ik5_code="5",
            segment=(segment.id, segment.position, _loop_id(loop), "8"),
            element=(position, reference, "1"),
        )


def _loop_id(loop: str) -> str:
    """IK303 is the loop's number without the guide's letter (``2100C`` → ``2100``)."""
    return loop[:4]
