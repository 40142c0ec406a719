"""The four X12 delimiters. A reader takes them from the ISA segment of each file; the
270s we build use ``DEFAULT``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Delimiters:
    element: str = "*"
    component: str = ":"
    repetition: str = "^"
    segment: str = "~"

    def all(self) -> frozenset[str]:
        return frozenset((self.element, self.component, self.repetition, self.segment))


DEFAULT = Delimiters()
