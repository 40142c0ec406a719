"""Write answers in the delimiters of the 270 they answer, inside a real envelope.

Every answer is its own interchange: the ISA swaps the 270's sender and receiver, the
GS swaps the application codes, and ISA13/GS06/ST02 come from the sandbox's own
sequence, as a real clearinghouse's would. Segment counts (SE01) and group and
interchange counts (GE01, IEA01) are computed, never typed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime

from clearinghouse_sandbox.x12.inquiry import Envelope
from clearinghouse_sandbox.x12.tokens import DEFAULT, Delimiters

_MAX_CONTROL_NUMBER = 999_999_999


class ControlNumbers:
    """The sandbox's own control numbers: one per answer, used for ISA13, GS06 and ST02.

    In memory and per process: a sandbox restarted starts again at 1, which is what a
    partner's test system does too, and the product matches answers by what they
    quote (trace number, our ISA13/GS06/ST02), never by these."""

    def __init__(self, start: int = 1) -> None:
        self._next = itertools.count(start)

    def take(self) -> int:
        return (next(self._next) - 1) % _MAX_CONTROL_NUMBER + 1


@dataclass(slots=True)
class SegmentWriter:
    """Collects segments. A value that holds a delimiter would corrupt the answer, so
    such characters are replaced by a space: only values the sandbox makes up can
    carry one (echoed values came in with the same delimiters)."""

    delimiters: Delimiters
    segments: list[str] = field(default_factory=list)

    def add(self, *items: str) -> None:
        """``add("EB", "1", ...)``: the segment id, then its elements."""
        tag, *elements = items
        cleaned = [tag, *(self._clean(value) for value in elements)]
        while len(cleaned) > 1 and cleaned[-1] == "":
            cleaned.pop()
        self.segments.append(self.delimiters.element.join(cleaned))

    def echo(self, tag: str, elements: tuple[str, ...]) -> None:
        """A segment of the 270, elements as sent."""
        self.add(tag, *elements)

    def repeat(self, *values: str) -> str:
        """One element holding repetitions (5010 EB03), or the first value alone when the
        270 declared no repetition separator."""
        if self.delimiters.repetition is None:
            return values[0]
        return self.delimiters.repetition.join(values)

    def _clean(self, value: str) -> str:
        forbidden = self.delimiters.all() - (
            {self.delimiters.repetition} if self.delimiters.repetition else set()
        )
        return "".join(" " if char in forbidden else char for char in value)


@dataclass(frozen=True, slots=True)
class AnswerEnvelope:
    """Who the answer is from and to: the 270's envelope, turned around."""

    received: Envelope | None
    control_number: int
    at: datetime

    @property
    def delimiters(self) -> Delimiters:
        return self.received.delimiters if self.received else DEFAULT

    def isa(self) -> str:
        d = self.delimiters
        received = self.received
        # Turned around; placeholders only when the 270's ISA could not be read that far.
        sender_q = (received.receiver_qualifier if received else "") or "ZZ"
        sender = (received.receiver_id if received else "") or "SANDBOX"
        receiver_q = (received.sender_qualifier if received else "") or "ZZ"
        receiver = (received.sender_id if received else "") or "UNKNOWN"
        return d.element.join(
            (
                "ISA",
                "00",
                " " * 10,
                "00",
                " " * 10,
                sender_q,
                sender[:15].ljust(15),
                receiver_q,
                receiver[:15].ljust(15),
                f"{self.at:%y%m%d}",
                f"{self.at:%H%M}",
                d.repetition or "^",
                "00501",
                f"{self.control_number:09d}",
                "0",
                received.usage_indicator if received else "T",
                d.component,
            )
        )

    def iea(self, groups: int) -> str:
        return self.delimiters.element.join(("IEA", str(groups), f"{self.control_number:09d}"))

    def wrap_transaction(
        self, functional_id: str, implementation: str, transaction: list[str]
    ) -> str:
        """ISA, GS, the transaction set (ST..SE), GE and IEA as one string."""
        d = self.delimiters
        gs = self.received.gs if self.received else None
        # GS02/GS03 turned around; the ISA ids when the 270's GS is unknown.
        app_sender = gs.get(3) if gs else ""
        app_receiver = gs.get(2) if gs else ""
        group = str(self.control_number)
        segments = [
            self.isa(),
            d.element.join(
                (
                    "GS",
                    functional_id,
                    app_sender or "SANDBOX",
                    app_receiver or "UNKNOWN",
                    f"{self.at:%Y%m%d}",
                    f"{self.at:%H%M}",
                    group,
                    "X",
                    implementation,
                )
            ),
            *transaction,
            d.element.join(("GE", "1", group)),
            self.iea(1),
        ]
        return self.join(segments)

    def join(self, segments: list[str]) -> str:
        terminator = self.delimiters.segment + self.delimiters.suffix
        return terminator.join(segments) + terminator

    @property
    def st02(self) -> str:
        return f"{self.control_number:04d}"


def close_transaction(writer: SegmentWriter, st02: str) -> list[str]:
    """The segments with their SE (count includes ST and SE)."""
    writer.add("SE", str(len(writer.segments) + 1), st02)
    return writer.segments
