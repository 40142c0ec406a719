"""``rcm import`` kinds of the reference tables, and the row vocabulary every importer shares.

A row model's fields are exactly the file's columns (see the import table in API.md).
Blank cells take the field's default, so a missing required value reads as
"Field required" and a missing optional one as its default. The field types below
(codes, names, NPIs, ``YYYY-MM-DD`` dates, birth dates) and ``resolve`` (codes to ids,
refusing unknown ones) are shared with the sweeps service's importers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from operator import attrgetter
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    model_validator,
)
from sqlalchemy.ext.asyncio import AsyncSession

from rcm_kit.clock import SystemClock
from rcm_kit.importing import ImportKind, ImportRejected, ImportStats, ParsedRow, upsert
from rcm_reference.models import billing_entity, facility, payer

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EARLIEST_BIRTH_DATE = date(1900, 1, 1)


def _iso_date(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError("must be a calendar date written YYYY-MM-DD")


def _latest_today() -> date:
    # An importer has no tenant time zone: accept any date that is already today
    # somewhere (UTC+14 is the first zone to reach a new day).
    return (SystemClock().now() + timedelta(hours=14)).date()


def _birth_date(value: date) -> date:
    if value > _latest_today():
        raise ValueError("is in the future")
    if value < _EARLIEST_BIRTH_DATE:
        raise ValueError(f"is before {_EARLIEST_BIRTH_DATE.isoformat()}")
    return value


def _npi(value: str) -> str:
    if not re.fullmatch(r"\d{10}", value):
        raise ValueError("must be 10 digits")
    return value


def _tax_id(value: str) -> str:
    if not re.fullmatch(r"\d{9}", value.replace("-", "")):
        raise ValueError("must be a 9-digit tax id, e.g. 12-3456789")
    return value


Code = Annotated[str, StringConstraints(min_length=1, max_length=80)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
PersonName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Npi = Annotated[str, AfterValidator(_npi)]
TaxId = Annotated[str, StringConstraints(max_length=20), AfterValidator(_tax_id)]
IsoDate = Annotated[date, BeforeValidator(_iso_date)]
BirthDate = Annotated[date, BeforeValidator(_iso_date), AfterValidator(_birth_date)]


class ImportRow(BaseModel):
    """Base of every import row model."""

    # NDJSON may carry codes and NPIs as JSON numbers.
    model_config = ConfigDict(frozen=True, coerce_numbers_to_str=True, str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _blank_takes_default(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return {key: value for key, value in data.items() if value is not None}
        return data


class PayerRow(ImportRow):
    payer_code: Code
    name: Name
    active: bool = True


class FacilityRow(ImportRow):
    facility_code: Code
    name: Name
    npi: Npi | None = None


class BillingEntityRow(ImportRow):
    billing_entity_code: Code
    name: Name
    npi: Npi | None = None
    tax_id: TaxId | None = None


def code_kind(name: str, table: sa.Table, row_model: type[ImportRow]) -> ImportKind:
    """A kind whose rows stand alone and upsert by the table's ``<table>_code`` column."""
    code = f"{table.name}_code"

    async def apply(session: AsyncSession, rows: list[ParsedRow]) -> ImportStats:
        return await upsert(session, table, [row.model_dump() for _, row in rows], key=[code])

    return ImportKind(name=name, row_model=row_model, natural_key=attrgetter(code), apply=apply)


KINDS: dict[str, ImportKind] = {
    kind.name: kind
    for kind in (
        code_kind("payers", payer, PayerRow),
        code_kind("facilities", facility, FacilityRow),
        code_kind("billing-entities", billing_entity, BillingEntityRow),
    )
}


@dataclass(frozen=True)
class Reference:
    """A column of an import row that names a row elsewhere (``payer_code``, ...).

    ``ids`` maps the known values to their ids; ``reason`` explains a miss and may
    show the value with ``{value}`` (leave it out where the value is patient data).
    """

    column: str
    ids: Mapping[str, Any]
    reason: str


def resolve(
    rows: Sequence[ParsedRow], references: Sequence[Reference]
) -> list[tuple[Any, dict[str, Any]]]:
    """Each row with the ids its references name, keyed by column.

    Raises ``ImportRejected`` listing every line with an unknown reference, so the file
    is refused before anything is written.
    """
    resolved: list[tuple[Any, dict[str, Any]]] = []
    errors: list[tuple[int, str]] = []
    for line, row in rows:
        ids: dict[str, Any] = {}
        misses: list[str] = []
        for reference in references:
            value = getattr(row, reference.column)
            found = reference.ids.get(value)
            if found is None:
                misses.append(f"{reference.column}: {reference.reason.format(value=value)}")
            ids[reference.column] = found
        if misses:
            errors.append((line, "; ".join(misses)))
        else:
            resolved.append((row, ids))
    if errors:
        raise ImportRejected(errors)
    return resolved
