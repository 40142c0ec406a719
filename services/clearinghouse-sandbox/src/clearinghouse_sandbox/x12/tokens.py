"""Delimiters and segments of one interchange, read the way a clearinghouse reads them.

The element separator is the fourth character of the ISA, the component separator is
ISA16 and the segment terminator is the character right after it; ISA11 is the
repetition separator. The ISA is found by counting its sixteen element separators
rather than by a fixed 106-character width, so an ISA with one badly padded element
still yields its delimiters. Line breaks and indentation after a terminator are
tolerated (many partners pretty-print), and remembered so the answer can mirror them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ISA_ELEMENTS = 16
_ISA_WINDOW = 512
_BOM = "\ufeff"
_LINE_BREAKS = "\r\n"


class NotX12(ValueError):
    """The body does not start with an ISA: there is no interchange to acknowledge."""


class InterchangeRejected(ValueError):
    """The interchange envelope is unusable: answered with a TA1 carrying ``note_code``.

    ``isa`` is the ISA as far as it could be read (``None`` when not even its
    delimiters could), so the TA1 can still quote the sender's ISA13."""

    def __init__(
        self,
        note_code: str,
        message: str,
        isa: Segment | None = None,
        delimiters: Delimiters | None = None,
    ) -> None:
        super().__init__(message)
        self.note_code = note_code
        self.isa = isa
        self.delimiters = delimiters


@dataclass(frozen=True, slots=True)
class Delimiters:
    element: str = "*"
    component: str = ":"
    repetition: str | None = "^"
    """``None`` when ISA11 is not a separator (a letter, as before 5010)."""
    segment: str = "~"
    suffix: str = ""
    """What followed the ISA's terminator (``"\\n"``, ``"\\r\\n"`` or nothing)."""
    _all: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        chars = {self.element, self.component, self.segment}
        if self.repetition is not None:
            chars.add(self.repetition)
        object.__setattr__(self, "_all", frozenset(chars))

    def all(self) -> frozenset[str]:
        return self._all


DEFAULT = Delimiters()


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment: its id, its elements numbered from 1, its 1-based position."""

    id: str
    elements: tuple[str, ...]
    position: int

    def get(self, index: int) -> str:
        """Element ``index`` (1-based), ``""`` when the segment is shorter."""
        if 1 <= index <= len(self.elements):
            return self.elements[index - 1]
        return ""


@dataclass(frozen=True, slots=True)
class Interchange:
    """The tokenized interchange: the ISA and every segment after it, IEA included."""

    delimiters: Delimiters
    isa: Segment
    segments: tuple[Segment, ...]


def tokenize(text: str) -> Interchange:
    """Split ``text`` into segments with the delimiters its ISA declares.

    Raises ``NotX12`` when there is no ISA at the start and ``InterchangeRejected``
    when the ISA cannot give four usable delimiters.
    """
    body = text.lstrip(_BOM + " \t\r\n")
    if not body.startswith("ISA") or len(body) < 4:
        raise NotX12("the body does not start with an ISA segment")
    delimiters, isa_end = _delimiters(body)
    isa_text = body[: isa_end - 1]
    isa = Segment("ISA", tuple(isa_text.split(delimiters.element)[1:]), 1)
    rest = body[isa_end:]
    segments: list[Segment] = []
    for raw in rest.split(delimiters.segment):
        cleaned = raw.strip(" \t" + _LINE_BREAKS)
        if not cleaned:
            continue
        parts = cleaned.split(delimiters.element)
        segments.append(Segment(parts[0].upper(), tuple(parts[1:]), len(segments) + 2))
    return Interchange(delimiters, isa, tuple(segments))


def _delimiters(body: str) -> tuple[Delimiters, int]:
    """The delimiters, and the index just past the ISA's terminator."""
    element = body[3]
    if element.isalnum() or element in " \r\n":
        raise InterchangeRejected("026", "ISA: the data element separator is not usable")
    # A well-formed ISA is 106 characters; the window leaves room for bad padding.
    separators = [i for i, char in enumerate(body[:_ISA_WINDOW]) if char == element]
    if len(separators) < ISA_ELEMENTS:
        raise InterchangeRejected("023", "ISA: fewer than 16 elements where the ISA should be")
    index = separators[ISA_ELEMENTS - 1]
    if index + 2 >= len(body):
        raise InterchangeRejected("023", "ISA: the body ends inside the ISA")
    component, terminator = body[index + 1], body[index + 2]
    partial = Segment("ISA", tuple(body[: index + 1].split(element)[1:]), 1)
    if component.isalnum() or component in (element, " "):
        raise InterchangeRejected("027", "ISA16: the component separator is not usable", partial)
    if terminator.isalnum() or terminator in (element, component, " "):
        raise InterchangeRejected("004", "ISA: the segment terminator is not usable", partial)
    repetition_value = partial.get(11)
    repetition = (
        repetition_value
        if len(repetition_value) == 1
        and not repetition_value.isalnum()
        and repetition_value not in (element, component, terminator, " ")
        else None
    )
    end = index + 3
    suffix = ""
    while end < len(body) and body[end] in _LINE_BREAKS and terminator not in _LINE_BREAKS:
        suffix += body[end]
        end += 1
    return Delimiters(element, component, repetition, terminator, suffix), index + 3
