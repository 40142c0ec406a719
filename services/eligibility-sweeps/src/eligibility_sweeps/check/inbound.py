"""271s, 999s and TA1s that a trading partner delivers after the real-time reply.

One transaction per file: the file is stored (always: the operator reads unmatched and
unreadable ones), and each check it answers that is still SUBMITTED is settled with the
same ``answers`` rules as a real-time reply. The file's SHA-256 is unique, so the same
file twice, even concurrently, stores one row and settles each check once; the second
delivery answers with the first one's result.

Matching: a 271 by the trace numbers it echoes (TRN*2), a 999 by the ST02 of each
transaction it acknowledges, a TA1 by the ISA13 it names. Our ISA13 = GS06 = ST02 come
from one counter per partner, so a control number names a check only together with its
partner: the partner of the URL, or else the partners whose ids match the file's ISA
(their receiver id as sender, our sender id as receiver).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.check import repository
from eligibility_sweeps.check.answers import Inquiry as AskedAbout
from eligibility_sweeps.check.answers import Verdict
from eligibility_sweeps.check.pipeline import read_answer
from eligibility_sweeps.models import CheckStatus, InboundOutcome, inbound_file
from eligibility_sweeps.worker import repository as sweep_members
from eligibility_sweeps.x12 import detect
from eligibility_sweeps.x12.read271 import parse_271_all
from eligibility_sweeps.x12.read_ack import parse_999, parse_ta1
from eligibility_sweeps.x12.segments import X12Error, parse_interchange


@dataclass(slots=True)
class Received:
    inbound_file_id: UUID
    kind: str
    outcome: InboundOutcome
    detail: str
    check_ids: list[UUID] = field(default_factory=list)
    duplicate: bool = False

    @property
    def accepted(self) -> bool:
        return self.outcome is InboundOutcome.MATCHED


async def receive(
    session: AsyncSession,
    text: str,
    *,
    content_type: str,
    trading_partner_id: UUID | None,
    at: datetime,
    refusal: str | None = None,
) -> Received:
    """Store ``text`` and settle the checks it answers, in ``session``'s transaction.
    ``refusal`` says why the request's envelope could not be read: the file is then
    only kept."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    kind = detect.sniff(text) if refusal is None else "unknown"
    inserted = await session.execute(
        insert(inbound_file)
        .values(
            trading_partner_id=trading_partner_id,
            received_at=at,
            content_type=content_type[:200],
            kind=kind,
            digest=digest,
            # PostgreSQL text cannot hold NUL, which a binary body sent by mistake has.
            body=text.replace("\x00", "\ufffd"),
            outcome=InboundOutcome.UNREADABLE.value,
            detail="",
        )
        .on_conflict_do_nothing(index_elements=[inbound_file.c.digest])
        .returning(inbound_file.c.inbound_file_id)
    )
    file_id = inserted.scalar()
    if file_id is None:
        return await _earlier(session, digest)
    try:
        result = (
            await _settle_all(session, text, kind, trading_partner_id, at)
            if refusal is None
            else (InboundOutcome.UNREADABLE, refusal, [])
        )
    except X12Error as error:
        result = (InboundOutcome.UNREADABLE, f"Unreadable {kind}: {error}", [])
    outcome, detail, check_ids = result
    await session.execute(
        sa.update(inbound_file)
        .where(inbound_file.c.inbound_file_id == file_id)
        .values(outcome=outcome.value, detail=detail, check_ids=check_ids)
    )
    return Received(file_id, kind, outcome, detail, check_ids)


async def _earlier(session: AsyncSession, digest: str) -> Received:
    row = (
        await session.execute(sa.select(inbound_file).where(inbound_file.c.digest == digest))
    ).one()
    return Received(
        row.inbound_file_id,
        row.kind,
        InboundOutcome(row.outcome),
        row.detail,
        list(row.check_ids),
        duplicate=True,
    )


_Result = tuple[InboundOutcome, str, list[UUID]]


async def _settle_all(
    session: AsyncSession, text: str, kind: str, partner_id: UUID | None, at: datetime
) -> _Result:
    if kind == "271":
        traces = [t for r in parse_271_all(text) for t in r.trace_numbers]
        if not traces:
            return InboundOutcome.UNMATCHED, "The 271 echoes no trace number (TRN*2)", []
        checks = await repository.by_trace_numbers(session, traces, partner_id)
        missing = sorted(set(traces) - {c.trace_number for c in checks})
        why = f"No check has trace number {', '.join(missing)}" if missing else ""
        return await _apply(session, text, checks, at, unmatched=why)
    if kind in ("999", "TA1"):
        interchange = parse_interchange(text)
        partners = (
            [partner_id]
            if partner_id is not None
            else await repository.partners_by_ids(
                session, interchange.sender_id, interchange.receiver_id
            )
        )
        numbers = _acknowledged_numbers(text, kind)
        checks = []
        for number in numbers:
            found = await repository.by_control_number(session, number, partners)
            checks.extend(found[:1])
        why = (
            ""
            if checks
            else (
                f"No check of {'this' if partner_id else 'a matching'} trading partner has control"
                f" number {', '.join(str(n) for n in numbers) or '(none)'}"
            )
        )
        return await _apply(session, text, checks, at, unmatched=why)
    if kind == "270":
        return InboundOutcome.UNREADABLE, "This is a 270 request, not an answer to one", []
    return InboundOutcome.UNREADABLE, "Not an X12 271, 999 or TA1 interchange", []


def _acknowledged_numbers(text: str, kind: str) -> list[int]:
    if kind == "TA1":
        return _ints([parse_ta1(text).acknowledged_control_number])
    ack = parse_999(text)
    numbers = [t.control_number for t in ack.transactions] or [
        ack.acknowledged_group_control_number
    ]
    return _ints(numbers)


def _ints(values: list[str]) -> list[int]:
    return [int(v) for v in values if v.strip().isdigit()]


async def _apply(
    session: AsyncSession, text: str, checks: list[Any], at: datetime, *, unmatched: str
) -> _Result:
    if not checks:
        return InboundOutcome.UNMATCHED, unmatched, []
    notes = []
    for check in checks:
        notes.append(await _apply_one(session, text, check, at))
    if unmatched:
        notes.append(unmatched)
    return InboundOutcome.MATCHED, "; ".join(notes), [c.check_id for c in checks]


async def _apply_one(session: AsyncSession, text: str, check: Any, at: datetime) -> str:
    if check.status != CheckStatus.SUBMITTED.value:
        return f"check {check.check_id} was already {check.status}: unchanged"
    verdict: Verdict = await read_answer(
        session,
        text,
        check_id=check.check_id,
        member_id=check.member_id,
        payer_id=check.payer_id,
        service_date=check.service_date,
        trace_number=check.trace_number,
        control_number=check.control_number,
        asked=AskedAbout.from_dict(check.inquiry),
        partner_name="the trading partner",
    )
    await repository.settle(session, check.check_id, verdict.settlement(raw=text, at=at), at=at)
    if check.sweep_run_id is not None:
        # A late 271 of a sweep: its member gets its outcome now (even after a cancel), and
        # its run completes if that was the last one (the worker's tick backs this up).
        await sweep_members.refresh_members(session, check.sweep_run_id, [check.member_id], at=at)
        await sweep_members.complete_if_done(session, check.sweep_run_id, at=at)
    return f"check {check.check_id}: {verdict.status.value}"
