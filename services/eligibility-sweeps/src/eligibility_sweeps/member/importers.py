"""``rcm import`` kinds of the sweeps service: members, coverage-policies, service-events.

Coverage policies and service events name their member by ``member_external_id`` and
their payer or facility by code; a file naming one that does not exist is refused
whole, each such line listed. A refusal never repeats a member's external id (patient
data): the line number points at it.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.member import repository
from eligibility_sweeps.models import (
    GENDERS,
    Relationship,
    ServiceEventStatus,
    coverage_policy,
    member,
    service_event,
)
from rcm_kit.importing import ImportKind, ImportStats, ParsedRow, upsert
from rcm_reference.importers import (
    BirthDate,
    Code,
    ImportRow,
    IsoDate,
    PersonName,
    Reference,
    resolve,
)
from rcm_reference.models import facility, payer
from rcm_reference.repository import ids_by_code

_GENDER_WORDS = {"female": "F", "male": "M", "unknown": "U"}


def _gender(value: Any) -> Any:
    if isinstance(value, str):
        value = _GENDER_WORDS.get(value.lower(), value.upper())
        if value not in GENDERS:
            raise ValueError("must be F, M or U (female, male, unknown)")
    return value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _status(value: Any) -> Any:
    return value.upper().replace("-", "_").replace(" ", "_") if isinstance(value, str) else value


class MemberRow(ImportRow):
    external_id: Code
    first_name: PersonName
    last_name: PersonName
    date_of_birth: BirthDate
    gender: Annotated[str, BeforeValidator(_gender)] | None = None


class CoveragePolicyRow(ImportRow):
    member_external_id: Code
    payer_code: Code
    subscriber_id: Code
    effective_from: IsoDate
    effective_to: IsoDate | None = None
    priority: Annotated[int, Field(ge=1, le=99)] = 1
    relationship: Annotated[Relationship, BeforeValidator(_lower)] = Relationship.SELF
    subscriber_first_name: PersonName | None = None
    subscriber_last_name: PersonName | None = None
    subscriber_date_of_birth: BirthDate | None = None

    @field_validator("effective_to")
    @classmethod
    def _not_before_start(cls, value: Any, info: ValidationInfo) -> Any:
        start = info.data.get("effective_from")
        if value is not None and start is not None and value < start:
            raise ValueError("must be on or after effective_from")
        return value

    @model_validator(mode="after")
    def _dependent_names_subscriber(self) -> CoveragePolicyRow:
        if self.relationship is not Relationship.SELF:
            missing = [
                name
                for name in (
                    "subscriber_first_name",
                    "subscriber_last_name",
                    "subscriber_date_of_birth",
                )
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(
                    f"{', '.join(missing)} required when relationship is {self.relationship}"
                )
        return self


class ServiceEventRow(ImportRow):
    external_id: Code
    member_external_id: Code
    facility_code: Code
    service_date: IsoDate
    status: Annotated[ServiceEventStatus, BeforeValidator(_status)]


def _values(rows: list[ParsedRow], column: str) -> Iterable[str]:
    return (getattr(row, column) for _, row in rows)


async def _member_reference(session: AsyncSession, rows: list[ParsedRow]) -> Reference:
    ids = await repository.ids_by_external_id(session, _values(rows, "member_external_id"))
    return Reference("member_external_id", ids, "no member has this external id")


async def _apply_members(session: AsyncSession, rows: list[ParsedRow]) -> ImportStats:
    return await upsert(session, member, [row.model_dump() for _, row in rows], key=["external_id"])


def _linked_kind(
    name: str,
    row_model: type[ImportRow],
    natural_key: tuple[str, ...],
    *,
    table: sa.Table,
    key: list[str],
    linked: sa.Table,
) -> ImportKind:
    """A kind whose rows name a member by external id and a ``linked`` row by its code."""
    code = f"{linked.name}_code"

    async def apply(session: AsyncSession, rows: list[ParsedRow]) -> ImportStats:
        codes = await ids_by_code(session, linked, _values(rows, code))
        references = [
            await _member_reference(session, rows),
            Reference(code, codes, f"no {linked.name} has the code {{value!r}}"),
        ]
        values = [
            {
                **row.model_dump(exclude={"member_external_id", code}),
                "member_id": ids["member_external_id"],
                f"{linked.name}_id": ids[code],
            }
            for row, ids in resolve(rows, references)
        ]
        return await upsert(session, table, values, key=key)

    return ImportKind(name, row_model, attrgetter(*natural_key), apply)


KINDS: dict[str, ImportKind] = {
    kind.name: kind
    for kind in (
        ImportKind("members", MemberRow, attrgetter("external_id"), _apply_members),
        _linked_kind(
            "coverage-policies",
            CoveragePolicyRow,
            ("member_external_id", "payer_code", "subscriber_id"),
            table=coverage_policy,
            key=["member_id", "payer_id", "subscriber_id"],
            linked=payer,
        ),
        _linked_kind(
            "service-events",
            ServiceEventRow,
            ("external_id",),
            table=service_event,
            key=["external_id"],
            linked=facility,
        ),
    )
}
