"""Tokenizer for one X12 interchange: delimiters from the ISA, segments, envelopes.

Real partners send files that a strict parser refuses: a BOM or blank lines before
the ISA, a line break or indentation after every terminator, a trailer whose counts
or control numbers are wrong. None of that changes what the file means, so the
tokenizer copes with it and records envelope defects as ``warnings`` instead of
failing: a 271 whose SE02 is wrong still tells us whether the patient is covered.
Only input that is not an X12 interchange at all raises ``X12Error``.
"""

from __future__ import annotations

from dataclasses import dataclass

from eligibility_sweeps.x12.delimiters import Delimiters

ISA_LENGTH = 106
"""The ISA is fixed width: 105 characters and the segment terminator."""

_BOM = "\ufeff"


class X12Error(ValueError):
    """The input cannot be read as the X12 document the caller expects.

    The message is safe to store and show: it names positions and codes, never
    the patient data around them.
    """


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment: its id and its data elements, numbered from 1 as in the guides."""

    id: str
    elements: tuple[str, ...]
    position: int
    """1-based ordinal of the segment in the interchange (the ISA is 1)."""
    component: str
    repetition: str | None
    """``None`` before 5010, where ISA11 is a standards id, not a separator."""

    def get(self, index: int) -> str:
        """Element ``index`` (1-based), or ``""`` when the segment is shorter."""
        if 1 <= index <= len(self.elements):
            return self.elements[index - 1]
        return ""

    def components(self, index: int) -> tuple[str, ...]:
        """The components of a composite element (``EB13``, ``IK4``'s ``C030``)."""
        value = self.get(index)
        return tuple(value.split(self.component)) if value else ()

    def repeats(self, index: int) -> tuple[str, ...]:
        """The repetitions of a repeating element (5010 ``EB03``), empty ones dropped."""
        value = self.get(index)
        if not value:
            return ()
        if self.repetition is None:
            return (value,)
        return tuple(part for part in value.split(self.repetition) if part)

    def text(self) -> str:
        """The segment rewritten with ``*`` between elements, for error reasons."""
        return "*".join((self.id, *self.elements)).rstrip("*")


@dataclass(frozen=True, slots=True)
class Transaction:
    """ST..SE: ``segments`` are the ones between them."""

    set_id: str
    control_number: str
    implementation: str
    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class FunctionalGroup:
    """GS..GE."""

    functional_id: str
    sender_code: str
    receiver_code: str
    control_number: str
    version: str
    """GS08, e.g. ``005010X279A1``."""
    transactions: tuple[Transaction, ...]


@dataclass(frozen=True, slots=True)
class Interchange:
    """ISA..IEA with the envelope facts a caller matches on."""

    delimiters: Delimiters
    version: str
    """ISA12: ``00501`` for 5010, ``00401`` for 4010."""
    control_number: str
    sender_qualifier: str
    sender_id: str
    receiver_qualifier: str
    receiver_id: str
    usage: str
    """ISA15: ``P`` production, ``T`` test."""
    segments: tuple[Segment, ...]
    """Every segment, ISA and IEA included: TA1s live outside any group."""
    groups: tuple[FunctionalGroup, ...]
    warnings: tuple[str, ...]

    def find(self, segment_id: str) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.id == segment_id)


def read_delimiters(isa: str) -> Delimiters:
    """The delimiters of a fixed-width ISA (at least 106 characters).

    ISA11 is the repetition separator only from 5010 on; before that it is the
    standards id (``U``), so the 4010 reader gets the component separator there
    and ``Segment.repetition`` is ``None``.
    """
    element = isa[3]
    version = isa.split(element)[12] if isa.count(element) >= 12 else ""
    repetition = isa[82] if version >= "00501" else isa[104]
    return Delimiters(element=element, component=isa[104], repetition=repetition, segment=isa[105])


def parse_interchange(text: str) -> Interchange:
    """Split ``text`` (one interchange) into segments and envelopes."""
    body = _strip_lead(text)
    isa = body[:ISA_LENGTH]
    _check_isa(isa)
    delimiters = read_delimiters(isa)
    isa_fields = isa[: ISA_LENGTH - 1].split(delimiters.element)
    if len(isa_fields) != 17:
        raise X12Error(f"ISA has {len(isa_fields) - 1} elements, expected 16")
    version = isa_fields[12]
    warnings: list[str] = []
    repetition: str | None = delimiters.repetition if version >= "00501" else None
    if repetition is not None and repetition == delimiters.component:
        warnings.append(
            "ISA11 repetition separator equals ISA16 component separator; "
            "repeating elements are split on it"
        )
    segments = _split_segments(body, delimiters, repetition)
    groups = _envelopes(segments, isa_fields[13], warnings)
    return Interchange(
        delimiters=delimiters,
        version=version,
        control_number=isa_fields[13],
        sender_qualifier=isa_fields[5],
        sender_id=isa_fields[6].strip(),
        receiver_qualifier=isa_fields[7],
        receiver_id=isa_fields[8].strip(),
        usage=isa_fields[15],
        segments=segments,
        groups=groups,
        warnings=tuple(warnings),
    )


def _strip_lead(text: str) -> str:
    """Drop a BOM and the whitespace some senders put before the ISA."""
    return text.lstrip(_BOM + " \t\r\n\x00")


def _check_isa(isa: str) -> None:
    if not isa.startswith("ISA"):
        raise X12Error("Not an X12 interchange: it does not start with an ISA segment")
    if len(isa) < ISA_LENGTH:
        raise X12Error(
            f"Not an X12 interchange: the ISA segment is {len(isa)} characters, "
            f"expected {ISA_LENGTH}"
        )
    element = isa[3]
    if element.isalnum() or element.isspace():
        raise X12Error("Not an X12 interchange: the ISA element separator is not a delimiter")
    if isa[105].isalnum() or isa[104].isalnum():
        # An alphanumeric terminator or component separator means the ISA's fixed
        # width is off (a padded field lost its spaces): guessing would misread it.
        raise X12Error("Not an X12 interchange: the ISA is not 106 fixed-width characters")


def _split_segments(
    body: str, delimiters: Delimiters, repetition: str | None
) -> tuple[Segment, ...]:
    segments: list[Segment] = []
    for raw in body.split(delimiters.segment):
        # Line breaks and indentation between segments are layout, not data; a
        # whitespace-only piece is the tail after the last terminator.
        piece = raw.strip(" \t\r\n\x00")
        if not piece:
            continue
        seg_id, *elements = piece.split(delimiters.element)
        segments.append(
            Segment(
                id=seg_id.upper(),
                elements=tuple(elements),
                position=len(segments) + 1,
                component=delimiters.component,
                repetition=repetition,
            )
        )
    return tuple(segments)


def _envelopes(
    segments: tuple[Segment, ...], isa13: str, warnings: list[str]
) -> tuple[FunctionalGroup, ...]:
    """Group GS..GE and ST..SE, checking trailer counts and control numbers."""
    groups: list[FunctionalGroup] = []
    group_header: Segment | None = None
    transactions: list[Transaction] = []
    header: Segment | None = None
    body: list[Segment] = []
    for segment in segments:
        if segment.id == "GS":
            group_header, transactions = segment, []
        elif segment.id == "ST":
            header, body = segment, []
        elif segment.id == "SE" and header is not None:
            _check_se(header, segment, len(body) + 2, warnings)
            transactions.append(_transaction(header, body))
            header = None
        elif segment.id == "GE" and group_header is not None:
            _check_ge(group_header, segment, len(transactions), warnings)
            groups.append(_group(group_header, transactions))
            group_header = None
        elif segment.id == "IEA":
            _check_iea(segment, isa13, len(groups), warnings)
        elif header is not None:
            body.append(segment)
    if header is not None:
        warnings.append(f"ST {header.get(2)} has no SE trailer")
        transactions.append(_transaction(header, body))
    if group_header is not None:
        warnings.append(f"GS {group_header.get(6)} has no GE trailer")
        groups.append(_group(group_header, transactions))
    if not segments or segments[-1].id != "IEA":
        warnings.append("The interchange has no IEA trailer at its end")
    return tuple(groups)


def _transaction(header: Segment, body: list[Segment]) -> Transaction:
    return Transaction(
        set_id=header.get(1),
        control_number=header.get(2),
        implementation=header.get(3),
        segments=tuple(body),
    )


def _group(header: Segment, transactions: list[Transaction]) -> FunctionalGroup:
    return FunctionalGroup(
        functional_id=header.get(1),
        sender_code=header.get(2),
        receiver_code=header.get(3),
        control_number=header.get(6),
        version=header.get(8),
        transactions=tuple(transactions),
    )


def _check_se(st: Segment, se: Segment, count: int, warnings: list[str]) -> None:
    if se.get(1) != str(count):
        warnings.append(
            f"SE01 of ST {st.get(2)} says {se.get(1) or 'nothing'} segments, counted {count}"
        )
    if se.get(2) != st.get(2):
        warnings.append(f"SE02 {se.get(2)} does not match ST02 {st.get(2)}")


def _check_ge(gs: Segment, ge: Segment, count: int, warnings: list[str]) -> None:
    if ge.get(1) != str(count):
        warnings.append(
            f"GE01 of GS {gs.get(6)} says {ge.get(1) or 'nothing'} transactions, counted {count}"
        )
    if ge.get(2) != gs.get(6):
        warnings.append(f"GE02 {ge.get(2)} does not match GS06 {gs.get(6)}")


def _check_iea(iea: Segment, isa13: str, count: int, warnings: list[str]) -> None:
    if iea.get(1) != str(count):
        warnings.append(f"IEA01 says {iea.get(1) or 'nothing'} groups, counted {count}")
    if iea.get(2) != isa13:
        warnings.append(f"IEA02 {iea.get(2)} does not match ISA13 {isa13}")
