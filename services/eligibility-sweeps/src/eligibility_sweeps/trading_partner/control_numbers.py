"""X12 control numbers per trading partner, and TRN trace numbers per check.

Control numbers come from ``eligibility.control_number_sequence``, one row per partner
(see that model for why one counter serves ISA13, GS06 and ST02). Each allocation is a
single ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``: the first call for a partner
creates its row at 1, every later one increments it under the row lock PostgreSQL takes
for the update. A second worker allocating for the same partner waits on that lock until
the first transaction ends and then sees its value, so two workers never get the same
number; and because the counter lives in the database, a restart carries on from it.

After 999,999,999 the counter wraps to 1. ISA13 has nine digits, and wrapping after a
billion interchanges is the X12 norm: partners check for duplicates over a window of
days, not for ever.

Transactions. Allocate in a short transaction of its own and commit it before the 270 is
sent (``async with unit_of_work(sessionmaker) as session: numbers = await
next_control_numbers(session, partner_id)``), then store the numbers with the check:

- The row lock is held until that transaction ends, so allocating inside a long check
  would serialise every check to the partner behind the slowest one.
- A rollback returns the number for reuse. That is harmless only while the number was
  never sent; a 270 sent from a transaction that then rolls back would have its number
  handed out again, and the partner would see a duplicate interchange. Committing first
  means a failed check merely leaves a gap, and gaps are allowed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.models import MAX_CONTROL_NUMBER, ControlNumberKind, control_number_sequence

__all__ = ["ControlNumbers", "new_trace_number", "next_control_numbers"]

_sequence = control_number_sequence


@dataclass(frozen=True, slots=True)
class ControlNumbers:
    """ISA13, GS06 and ST02 of one interchange (each 1..999,999,999)."""

    interchange: int
    group: int
    transaction: int


async def next_control_numbers(session: AsyncSession, trading_partner_id: UUID) -> ControlNumbers:
    """The next control numbers for ``trading_partner_id``, persisted in ``session``'s
    transaction (the caller commits; see the module docstring for why promptly).

    Raises ``IntegrityError`` when the partner does not exist (the foreign key)."""
    first = insert(_sequence).values(
        trading_partner_id=trading_partner_id,
        kind=ControlNumberKind.INTERCHANGE.value,
        last_value=1,
    )
    statement = first.on_conflict_do_update(
        index_elements=[_sequence.c.trading_partner_id, _sequence.c.kind],
        set_={
            "last_value": sa.case(
                (_sequence.c.last_value >= MAX_CONTROL_NUMBER, 1),
                else_=_sequence.c.last_value + 1,
            ),
            "updated_at": sa.func.now(),
        },
    ).returning(_sequence.c.last_value)
    value = int((await session.execute(statement)).scalar_one())
    return ControlNumbers(interchange=value, group=value, transaction=value)


def new_trace_number() -> str:
    """A TRN02 trace number for one check: 32 upper-case hex digits of a random UUID.

    Globally unique (122 random bits: a collision is not a practical concern even across
    tenants and partners), so the 271 that echoes it matches exactly one check without
    any coordination. Digits and A-F only, so it is safe under any delimiters and well
    inside TRN02's 50 characters."""
    return uuid.uuid4().hex.upper()
