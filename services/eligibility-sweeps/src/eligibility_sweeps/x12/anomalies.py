"""Anomaly codes for the sweep exception queue (issue 4, "Anomaly codes").

A RECEIVED 271 can still need a human: the coverage is inactive, the payer does not
know the person, another payer is primary, the plan is about to end, the payer holds
different demographics, or the payer/member id/plan moved since the last RECEIVED
check. ``detect_anomalies`` turns one parsed 271 (plus what we sent and the previous
check's ``snapshot``) into those codes. Pure: no I/O, no clock.

Rules worth knowing, each chosen to keep the queue free of noise:

- A value the payer left out (no DMG, no first name, no REF*6P...) is never a
  mismatch or a change: payers omit optional segments from one answer to the next.
- Names are compared normalised: accents stripped, case folded, punctuation and
  whitespace removed, generational suffixes (JR, SR, II-IV) dropped. Middle names are
  not compared: payers shorten them to an initial or drop them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from enum import StrEnum

from eligibility_sweeps.x12 import codes
from eligibility_sweeps.x12.build270 import Inquiry, PersonName
from eligibility_sweeps.x12.read271 import (
    Benefit,
    CoverageStatus,
    EligibilityResponse,
    Member,
)

PLAN_ENDS_SOON_DAYS = 30
"""A plan ending on the service date or up to this many days after it is flagged."""

_SUFFIXES = frozenset({"JR", "SR", "II", "III", "IV"})
_END_QUALIFIERS = frozenset({"347", "349", "357"})
_PERIOD_QUALIFIERS = frozenset({"291", "292", "307"})
_NOT_PRIMARY_ENTITIES = frozenset({"SEP", "TTP"})
"""2120 entity codes naming the other payer as secondary (SEP) or tertiary (TTP)."""
_MSP_INSURANCE_TYPES = frozenset({"12", "13", "14", "15", "16", "41", "42", "43", "47"})
"""EB04 Medicare Secondary Payer types: Medicare says another payer pays first."""


class Anomaly(StrEnum):
    COVERAGE_INACTIVE = "COVERAGE_INACTIVE"
    DEMOGRAPHIC_MISMATCH = "DEMOGRAPHIC_MISMATCH"
    MEMBER_ID_CHANGED = "MEMBER_ID_CHANGED"
    MEMBER_NOT_FOUND = "MEMBER_NOT_FOUND"
    OTHER_PAYER_PRIMARY = "OTHER_PAYER_PRIMARY"
    PAYER_CHANGED = "PAYER_CHANGED"
    PLAN_CHANGED = "PLAN_CHANGED"
    PLAN_ENDS_SOON = "PLAN_ENDS_SOON"


@dataclass(frozen=True, slots=True, kw_only=True)
class SentIdentity:
    """Who the 270 asked about: the patient's name and date of birth (subscriber or
    dependent) and the member id we sent (always the subscriber's: a 5010 dependent
    has no id of its own in a 270)."""

    member_id: str
    name: PersonName
    birth_date: date

    @classmethod
    def from_inquiry(cls, inquiry: Inquiry) -> SentIdentity:
        patient = inquiry.dependent or inquiry.subscriber
        return cls(
            member_id=inquiry.subscriber.member_id,
            name=patient.name,
            birth_date=patient.birth_date,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PreviousCheck:
    """What a RECEIVED check remembers so the next check of the same member and payer
    can tell a change, all as the payer returned them (empty when it sent none).

    - ``payer_id``/``payer_name``: 2100A NM109/NM103. Payers are compared by id when
      both checks have one, else by name.
    - ``member_id``: the patient's 2100C/D NM109, the subscriber's when the dependent
      has none.
    - ``plan_description``: EB05 of the patient's active plan-level lines (EB03 ``30``
      or none), sorted and joined with `` / ``; ``plan_number`` REF*18; ``group_number``
      REF*6P. A plan change is any of the three differing where both sides have it.
    """

    payer_id: str = ""
    payer_name: str = ""
    member_id: str = ""
    plan_description: str = ""
    plan_number: str = ""
    group_number: str = ""

    def as_dict(self) -> dict[str, str]:
        """For a JSON column."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> PreviousCheck:
        """Tolerant of missing or extra keys, so older stored snapshots still load."""
        names = PreviousCheck.__dataclass_fields__
        return cls(**{n: str(data.get(n) or "") for n in names})


def snapshot(response: EligibilityResponse) -> PreviousCheck:
    """The ``PreviousCheck`` to store with a RECEIVED check built from ``response``."""
    payer = response.payer
    patient = response.patient
    references = _references(response)
    descriptions = {
        _squash(b.plan_description) for b in plan_lines(response) if b.plan_description.strip()
    }
    return PreviousCheck(
        payer_id=_squash(payer.id) if payer else "",
        payer_name=_squash(payer.last_name) if payer else "",
        member_id=_squash(_returned_member_id(response)) if patient else "",
        plan_description=" / ".join(sorted(descriptions)),
        plan_number=_squash(references.get("18", "")),
        group_number=_squash(references.get("6P", "")),
    )


def detect_anomalies(
    response: EligibilityResponse,
    *,
    sent: SentIdentity,
    service_date: date,
    previous: PreviousCheck | None,
) -> list[Anomaly]:
    """Every anomaly of one RECEIVED 271, sorted and unique.

    ``response`` should be parsed with the same ``service_date`` so its
    ``coverage_status`` speaks for that day. ``previous`` is the snapshot of the
    previous RECEIVED check for the same member and payer, ``None`` for the first.
    """
    found: set[Anomaly] = set()
    if response.coverage_status is CoverageStatus.INACTIVE:
        found.add(Anomaly.COVERAGE_INACTIVE)
    if response.coverage_status is CoverageStatus.NOT_FOUND:
        found.add(Anomaly.MEMBER_NOT_FOUND)
    if _other_payer_primary(response, service_date):
        found.add(Anomaly.OTHER_PAYER_PRIMARY)
    if _plan_ends_soon(response, service_date):
        found.add(Anomaly.PLAN_ENDS_SOON)
    if response.patient is not None and _demographics_differ(response.patient, sent):
        found.add(Anomaly.DEMOGRAPHIC_MISMATCH)
    if _member_id_changed_against_sent(response, sent):
        found.add(Anomaly.MEMBER_ID_CHANGED)
    if previous is not None:
        found.update(_changes_since(previous, snapshot(response)))
    return sorted(found)


def normalise_name(value: str) -> str:
    """``"Müller-Smith, Jr."`` → ``"MULLERSMITH"``: what two spellings of one name share."""
    decomposed = unicodedata.normalize("NFKD", value)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = [w for w in re.split(r"[\s,.]+", plain.upper()) if w]
    while len(words) > 1 and words[-1] in _SUFFIXES:
        words.pop()
    return "".join(c for c in "".join(words) if c.isalnum())


def _patient_loop(response: EligibilityResponse) -> str:
    return "2110D" if response.dependent is not None else "2110C"


def _other_payer_primary(response: EligibilityResponse, day: date) -> bool:
    """An ``EB*R`` on the patient's own 2110 loop that applies on ``day`` and does not
    name the other payer only as secondary or tertiary.

    5010 says whose turn it is through the 2120 entity code (PRP primary, SEP
    secondary, TTP tertiary). An EB*R naming the other payer as SEP/TTP is
    coordination detail, not a threat to billing this payer first; one with PRP, any
    other entity or none is taken as primary (the queue would rather ask), and a
    Medicare Secondary Payer type (EB04 12-16, 41-43, 47) always is.
    """
    loop = _patient_loop(response)
    for other in response.other_payers:
        line = other.benefit
        if line.loop != loop or not line.applies_on(day):
            continue
        if line.insurance_type in _MSP_INSURANCE_TYPES:
            return True
        entity_codes = {e.entity_code for e in line.entities}
        if not entity_codes or not entity_codes <= _NOT_PRIMARY_ENTITIES:
            return True
    return False


def _plan_ends_soon(response: EligibilityResponse, day: date) -> bool:
    """The plan's end (the patient's DTP*347/349/357 or eligibility range, or the end
    date of an active plan-level EB line) falls within [day, day + 30]. An end before
    ``day`` is an inactive plan, reported as such, not "ending soon"."""
    if response.coverage_status in (CoverageStatus.INACTIVE, CoverageStatus.NOT_FOUND):
        return False
    ends = [response.plan_end] if response.plan_end else []
    for line in plan_lines(response):
        if line.info_code in codes.ACTIVE_INFO_CODES and line.applies_on(day):
            ends.extend(_ends(line))
    limit = day + timedelta(days=PLAN_ENDS_SOON_DAYS)
    return any(day <= end <= limit for end in ends)


def _ends(line: Benefit) -> Iterable[date]:
    for period in line.dates:
        if period.end is None:
            continue
        if period.qualifier in _END_QUALIFIERS or (
            period.qualifier in _PERIOD_QUALIFIERS and period.end != period.start
        ):
            yield period.end


def plan_lines(response: EligibilityResponse) -> list[Benefit]:
    """Active plan-level lines (EB03 ``30`` or none) of the patient, else of anyone."""
    lines = [
        b
        for b in response.benefits
        if b.info_code in codes.ACTIVE_INFO_CODES
        and (not b.service_types or "30" in b.service_types)
    ]
    loop = _patient_loop(response)
    return [b for b in lines if b.loop == loop] or lines


def _demographics_differ(patient: Member, sent: SentIdentity) -> bool:
    if patient.birth_date is not None and patient.birth_date != sent.birth_date:
        return True
    name = patient.name
    if name is None:
        return False
    pairs = ((name.last_name, sent.name.last), (name.first_name, sent.name.first or ""))
    for returned, ours in pairs:
        returned_n, ours_n = normalise_name(returned), normalise_name(ours)
        if returned_n and ours_n and returned_n != ours_n:
            return True
    return False


def _member_id_changed_against_sent(response: EligibilityResponse, sent: SentIdentity) -> bool:
    """The payer answered under another id than the one we sent.

    The 271's NM109 differing from our member id is the change itself (with or without
    the INS*Y*18*001*25 "identifying data changed" flag, which also covers name and
    date of birth corrections and so is not enough alone). A REF*Q4 (prior identifier)
    unequal to the NM109 is the payer saying the id moved even when it echoed ours.
    """
    returned = _squash(_returned_member_id(response))
    if returned and returned != _squash(sent.member_id):
        return True
    prior = _references(response).get("Q4", "")
    return bool(prior and returned and _squash(prior) != returned)


def _returned_member_id(response: EligibilityResponse) -> str:
    patient = response.patient
    if patient is not None and patient.member_id:
        return patient.member_id
    return response.subscriber.member_id if response.subscriber else ""


def _references(response: EligibilityResponse) -> dict[str, str]:
    """REF qualifier → value, the patient's loop winning over the subscriber's."""
    found: dict[str, str] = {}
    for member in (response.subscriber, response.dependent):
        if member is not None:
            found.update({r.qualifier: r.value for r in member.references if r.value})
    return found


def _changes_since(previous: PreviousCheck, current: PreviousCheck) -> set[Anomaly]:
    found: set[Anomaly] = set()
    if previous.payer_id and current.payer_id:
        if previous.payer_id != current.payer_id:
            found.add(Anomaly.PAYER_CHANGED)
    elif _differs(previous.payer_name, current.payer_name):
        found.add(Anomaly.PAYER_CHANGED)
    if _differs(previous.member_id, current.member_id):
        found.add(Anomaly.MEMBER_ID_CHANGED)
    plan_fields = (
        (previous.plan_description, current.plan_description),
        (previous.plan_number, current.plan_number),
        (previous.group_number, current.group_number),
    )
    if any(_differs(old, new) for old, new in plan_fields):
        found.add(Anomaly.PLAN_CHANGED)
    return found


def _differs(old: str, new: str) -> bool:
    return bool(old and new and _squash(old) != _squash(new))


def _squash(value: str) -> str:
    """Upper case, inner whitespace collapsed: ``" w 123 "`` and ``"W 123"`` are one id."""
    return " ".join(value.upper().split())
