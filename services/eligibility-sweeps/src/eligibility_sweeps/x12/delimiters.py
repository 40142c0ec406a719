"""The four X12 delimiters. A reader takes them from the ISA segment of each file; the
270s we build use ``DEFAULT``."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Delimiters:
    element: str = "*"
    component: str = ":"
    repetition: str = "^"
    segment: str = "~"
    # Computed once: the builder checks every character of every value against it.
    _all: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        chars = frozenset((self.element, self.component, self.repetition, self.segment))
        object.__setattr__(self, "_all", chars)

    def all(self) -> frozenset[str]:
        return self._all


DEFAULT = Delimiters()
