"""The rule table: which answer a 270 gets, chosen by its subscriber id (2100C NM109).

A match is exact and case-insensitive; any other id answers ``SBX-ACTIVE``, so a
demo or benchmark can use made-up member ids and still get a plausible 271. The
README shows the table with what each answer holds.
"""

from __future__ import annotations

from enum import StrEnum


class Rule(StrEnum):
    ACTIVE = "SBX-ACTIVE"
    INACTIVE = "SBX-INACTIVE"
    NOT_FOUND = "SBX-NOTFOUND"
    BAD_ID = "SBX-BADID"
    OTHER_PAYER = "SBX-OTHERPAYER"
    PLAN_ENDS = "SBX-PLANENDS"
    DEMOGRAPHICS = "SBX-DEMOG"
    NEW_ID = "SBX-NEWID"
    AAA42 = "SBX-AAA42"
    AAA79 = "SBX-AAA79"
    REJECT_999 = "SBX-999"
    REJECT_TA1 = "SBX-TA1"
    HTTP_401 = "SBX-401"
    HTTP_503 = "SBX-503"
    CORE_ERROR = "SBX-COREERR"
    HANG = "SBX-HANG"
    DELAYED = "SBX-DELAYED"


UNREADABLE = "UNREADABLE"
"""The label of a request whose body could not be read as a 270 (no rule applies)."""
CORE_ENVELOPE = "CORE-ENVELOPE"
"""The label of a CORE request refused for its envelope before the payload was read."""

_BY_ID = {rule.value: rule for rule in Rule}

COVERAGE_RULES = frozenset(
    {
        Rule.ACTIVE,
        Rule.INACTIVE,
        Rule.OTHER_PAYER,
        Rule.PLAN_ENDS,
        Rule.DEMOGRAPHICS,
        Rule.NEW_ID,
        Rule.HANG,
        Rule.DELAYED,
    }
)
"""Rules whose 271 carries plan and benefit lines (EB)."""


def rule_for(subscriber_id: str) -> Rule:
    """The rule for a subscriber id; ``SBX-ACTIVE`` for anything not in the table."""
    return _BY_ID.get(subscriber_id.strip().upper(), Rule.ACTIVE)
