"""Readers for the 999 implementation acknowledgment and the TA1 interchange
acknowledgment: accepted, partially accepted or rejected, with the codes in words.

Both are small and flat, so they are read from our own tokenizer rather than
through pyx12's validator (which reports on the file's conformance, not on what
the acknowledgment says). The words come from ``codes``. The failure reasons are
built from codes, positions and segment ids only: IK404 (the bad value copied
from our 270) can be patient data, so it is kept on the result but never put in
a reason text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from eligibility_sweeps.x12 import codes
from eligibility_sweeps.x12.segments import (
    Interchange,
    Segment,
    Transaction,
    X12Error,
    parse_interchange,
)


class AckStatus(StrEnum):
    ACCEPTED = "ACCEPTED"
    PARTIALLY_ACCEPTED = "PARTIALLY_ACCEPTED"
    REJECTED = "REJECTED"


def _status(code: str) -> AckStatus:
    """A and E accept (E: with errors noted), P partially accepts, the rest reject."""
    if code in ("A", "E"):
        return AckStatus.ACCEPTED
    if code == "P":
        return AckStatus.PARTIALLY_ACCEPTED
    return AckStatus.REJECTED


@dataclass(frozen=True, slots=True)
class ElementError:
    """An ``IK4``: IK401 position (``9``, or ``9:2`` for a component), IK403 code."""

    position: str
    element_reference: str
    code: str
    description: str
    bad_value: str
    segment: Segment

    def text(self) -> str:
        """The IK4 without IK404: the bad value may be patient data."""
        return "*".join(("IK4", *self.segment.elements[:3])).rstrip("*")

    def label(self) -> str:
        element, _, component = self.position.partition(":")
        label = f"element {element}"
        if component:
            label += f", component {component.split(':')[0]}"
        return f"{label}: {self.description}"


@dataclass(frozen=True, slots=True)
class SegmentError:
    """An ``IK3`` with its ``IK4``s."""

    segment_id: str
    position: str
    loop: str
    code: str
    description: str
    segment: Segment
    elements: tuple[ElementError, ...]

    def text(self) -> str:
        """``IK3*NM1*8*2100*8 IK4*9*67*1 (segment NM1, element 9: ...)``."""
        raw = " ".join((self.segment.text(), *(e.text() for e in self.elements)))
        if self.elements:
            detail = "; ".join(e.label() for e in self.elements)
            return f"{raw} (segment {self.segment_id}, {detail})"
        return f"{raw} (segment {self.segment_id}: {self.description})"


@dataclass(frozen=True, slots=True)
class TransactionAck:
    """An ``AK2``..``IK5``: the verdict on one transaction set we sent."""

    set_id: str
    control_number: str
    """AK202: the ST02 of our 270."""
    implementation: str
    status: AckStatus
    code: str
    description: str
    error_codes: tuple[tuple[str, str], ...]
    segment_errors: tuple[SegmentError, ...]
    ik5: Segment | None

    def reason(self) -> str:
        if self.segment_errors:
            return "; ".join(e.text() for e in self.segment_errors)
        words = [w for _, w in self.error_codes] or [self.description]
        raw = self.ik5.text() if self.ik5 else f"AK2*{self.set_id}*{self.control_number}"
        return f"{raw} (transaction {self.set_id} {self.control_number}: {'; '.join(words)})"


@dataclass(frozen=True, slots=True)
class Acknowledgment999:
    interchange_control_number: str
    group_control_number: str
    transaction_control_number: str
    acknowledged_functional_id: str
    acknowledged_group_control_number: str
    """AK102: the GS06 of the group we sent."""
    acknowledged_version: str
    status: AckStatus
    code: str
    description: str
    transactions_included: str
    transactions_received: str
    transactions_accepted: str
    group_error_codes: tuple[tuple[str, str], ...]
    transactions: tuple[TransactionAck, ...]
    ak9: Segment | None
    warnings: tuple[str, ...]

    def for_transaction(self, control_number: str) -> TransactionAck | None:
        return next((t for t in self.transactions if t.control_number == control_number), None)

    def failure_reason(self, transaction_control_number: str | None = None) -> str | None:
        """``999 rejected: ...`` when the group (or the given transaction) was not
        accepted; ``None`` when it was."""
        if transaction_control_number is not None:
            ack = self.for_transaction(transaction_control_number)
            if ack is not None:
                return None if ack.status is AckStatus.ACCEPTED else f"999 rejected: {ack.reason()}"
        if self.status is AckStatus.ACCEPTED:
            return None
        rejected = [t for t in self.transactions if t.status is not AckStatus.ACCEPTED]
        if rejected:
            return "999 rejected: " + "; ".join(t.reason() for t in rejected)
        words = [w for _, w in self.group_error_codes] or [self.description]
        raw = self.ak9.text() if self.ak9 else "AK9"
        return f"999 rejected: {raw} (functional group: {'; '.join(words)})"


@dataclass(frozen=True, slots=True)
class TA1Acknowledgment:
    acknowledged_control_number: str
    """TA101: the ISA13 of the interchange we sent."""
    interchange_date: str
    interchange_time: str
    code: str
    description: str
    note_code: str
    note: str
    status: AckStatus
    warnings: tuple[str, ...]

    def failure_reason(self) -> str | None:
        """``TA1 rejected: 006 invalid interchange sender id``, or None if accepted."""
        if self.status is not AckStatus.REJECTED:
            return None
        return f"TA1 rejected: {self.note_code} {self.note.lower()}".rstrip()


def parse_999(text: str) -> Acknowledgment999:
    """Read the first 999 transaction set of ``text``."""
    interchange = parse_interchange(text)
    found = [
        (group.control_number, transaction)
        for group in interchange.groups
        for transaction in group.transactions
        if transaction.set_id == "999"
    ]
    if not found:
        raise X12Error(f"Expected a 999 acknowledgment, got {_content(interchange)}")
    group_control_number, transaction = found[0]
    return _read_999(interchange, group_control_number, transaction)


def parse_ta1(text: str) -> TA1Acknowledgment:
    """Read the TA1 of ``text`` (it sits between the ISA and the first GS, if any)."""
    interchange = parse_interchange(text)
    ta1s = interchange.find("TA1")
    if not ta1s:
        raise X12Error(f"Expected a TA1 acknowledgment, got {_content(interchange)}")
    ta1 = ta1s[0]
    return TA1Acknowledgment(
        acknowledged_control_number=ta1.get(1),
        interchange_date=ta1.get(2),
        interchange_time=ta1.get(3),
        code=ta1.get(4),
        description=codes.describe(codes.TA1_ACK_CODES, ta1.get(4)),
        note_code=ta1.get(5),
        note=codes.describe(codes.TA1_NOTE_CODES, ta1.get(5)),
        status=_status(ta1.get(4)),
        warnings=interchange.warnings,
    )


def parse_acknowledgment(text: str) -> Acknowledgment999 | TA1Acknowledgment:
    """A 999 if the file has one, else its TA1: a partner may send either back."""
    interchange = parse_interchange(text)
    has_999 = any(t.set_id == "999" for g in interchange.groups for t in g.transactions)
    if has_999 or not interchange.find("TA1"):
        return parse_999(text)
    return parse_ta1(text)


def _content(interchange: Interchange) -> str:
    sets = sorted({t.set_id for g in interchange.groups for t in g.transactions})
    return "transaction set " + ", ".join(sets) if sets else "no acknowledgment"


@dataclass
class _TransactionDraft:
    ak2: Segment
    segment_errors: list[SegmentError] = field(default_factory=list)
    current: Segment | None = None
    elements: list[ElementError] = field(default_factory=list)

    def close_segment(self) -> None:
        if self.current is not None:
            ik3 = self.current
            self.segment_errors.append(
                SegmentError(
                    segment_id=ik3.get(1),
                    position=ik3.get(2),
                    loop=ik3.get(3),
                    code=ik3.get(4),
                    description=codes.describe(codes.IK3_SEGMENT_ERRORS, ik3.get(4)),
                    segment=ik3,
                    elements=tuple(self.elements),
                )
            )
        self.current, self.elements = None, []

    def freeze(self, ik5: Segment | None) -> TransactionAck:
        self.close_segment()
        code = ik5.get(1) if ik5 else ""
        errors = [ik5.get(i) for i in range(2, 7)] if ik5 else []
        return TransactionAck(
            set_id=self.ak2.get(1),
            control_number=self.ak2.get(2),
            implementation=self.ak2.get(3),
            status=_status(code),
            code=code,
            description=codes.describe(codes.ACK_CODES, code),
            error_codes=tuple((c, codes.describe(codes.IK5_ERRORS, c)) for c in errors if c),
            segment_errors=tuple(self.segment_errors),
            ik5=ik5,
        )


def _read_999(
    interchange: Interchange, group_control_number: str, transaction: Transaction
) -> Acknowledgment999:
    ak1: Segment | None = None
    ak9: Segment | None = None
    draft: _TransactionDraft | None = None
    acks: list[TransactionAck] = []
    for segment in transaction.segments:
        if segment.id == "AK1":
            ak1 = segment
        elif segment.id == "AK2":
            if draft is not None:
                acks.append(draft.freeze(None))
            draft = _TransactionDraft(ak2=segment)
        elif segment.id == "IK3" and draft is not None:
            draft.close_segment()
            draft.current = segment
        elif segment.id == "IK4" and draft is not None:
            draft.elements.append(_element_error(segment))
        elif segment.id == "IK5" and draft is not None:
            acks.append(draft.freeze(segment))
            draft = None
        elif segment.id == "AK9":
            ak9 = segment
    if draft is not None:
        acks.append(draft.freeze(None))
    code = ak9.get(1) if ak9 else ""
    group_errors = [ak9.get(i) for i in range(5, 10)] if ak9 else []
    return Acknowledgment999(
        interchange_control_number=interchange.control_number,
        group_control_number=group_control_number,
        transaction_control_number=transaction.control_number,
        acknowledged_functional_id=ak1.get(1) if ak1 else "",
        acknowledged_group_control_number=ak1.get(2) if ak1 else "",
        acknowledged_version=ak1.get(3) if ak1 else "",
        status=_status(code),
        code=code,
        description=codes.describe(codes.ACK_CODES, code),
        transactions_included=ak9.get(2) if ak9 else "",
        transactions_received=ak9.get(3) if ak9 else "",
        transactions_accepted=ak9.get(4) if ak9 else "",
        group_error_codes=tuple(
            (c, codes.describe(codes.AK9_ERRORS, c)) for c in group_errors if c
        ),
        transactions=tuple(acks),
        ak9=ak9,
        warnings=interchange.warnings,
    )


def _element_error(segment: Segment) -> ElementError:
    # IK401 is a composite (position, component, repetition); keep it as "9:2".
    position = ":".join(part for part in segment.components(1) if part) or segment.get(1)
    return ElementError(
        position=position,
        element_reference=segment.get(2),
        code=segment.get(3),
        description=codes.describe(codes.IK4_ELEMENT_ERRORS, segment.get(3)),
        bad_value=segment.get(4),
        segment=segment,
    )
