"""Tell what an inbound X12 file is before choosing its reader."""

from __future__ import annotations

from typing import Literal

from eligibility_sweeps.x12.segments import X12Error, parse_interchange

Kind = Literal["271", "999", "TA1", "270", "unknown"]

_SETS: dict[str, Kind] = {"271": "271", "999": "999", "270": "270"}


def sniff(text: str) -> Kind:
    """``271``, ``999``, ``TA1`` or ``270`` by the first transaction set (a TA1 when
    the interchange has none); ``unknown`` for other sets and for non-X12 input.

    A 999 wins over a TA1 in the same interchange: it says more about our 270.
    """
    try:
        interchange = parse_interchange(text)
    except X12Error:
        return "unknown"
    sets = [t.set_id for g in interchange.groups for t in g.transactions]
    if sets:
        return _SETS.get(sets[0], "unknown")
    return "TA1" if interchange.find("TA1") else "unknown"
