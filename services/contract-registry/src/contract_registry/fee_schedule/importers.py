"""``rcm import`` kinds ``fee-schedules`` and ``fee-schedule-lines``.

A schedule names its contract by ``payer_code`` + ``contract_number`` (both empty: a
schedule linked to no contract); its natural key is that contract and its name. A line
names its schedule the same way plus ``fee_schedule_name``, and upserts by schedule,
procedure code and modifier. A file naming a contract or schedule that does not exist is
refused whole, each such line listed.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, cast

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from contract_registry.contract.importers import check_end, upper
from contract_registry.contract.repository import ids_by_payer_and_number
from contract_registry.fee_schedule import repository
from rcm_kit.importing import ImportKind, ImportStats, ParsedRow
from rcm_reference.importers import Code, ImportRow, IsoDate, Name, Reference, resolve

_PROCEDURE_CODE = re.compile(r"\d{4}[0-9FTU]|[A-Z]\d{4}")
_MODIFIER = re.compile(r"[A-Z0-9]{2}")


def _procedure_code(value: str) -> str:
    if not _PROCEDURE_CODE.fullmatch(value):
        raise ValueError("must be a 5-character CPT or HCPCS code, e.g. 99213, 0001F, J1100")
    return value


def _modifier(value: str) -> str:
    if not _MODIFIER.fullmatch(value):
        raise ValueError("must be 2 letters or digits, e.g. 25, TC")
    return value


def _together(value: Any, info: ValidationInfo) -> Any:
    if "payer_code" not in info.data:
        return value  # payer_code is malformed, and reported as such
    payer_code = info.data["payer_code"]
    if value is None and payer_code is not None:
        raise ValueError(
            "required with payer_code (leave both empty for a schedule not linked to a contract)"
        )
    if value is not None and payer_code is None:
        raise ValueError(
            "needs payer_code too (leave both empty for a schedule not linked to a contract)"
        )
    return value


ProcedureCode = Annotated[str, BeforeValidator(upper), AfterValidator(_procedure_code)]
Modifier = Annotated[str, BeforeValidator(upper), AfterValidator(_modifier)]
Amount = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]


def contract_label(payer_code: str | None, contract_number: str | None) -> str:
    return f"{payer_code} / {contract_number}"


def schedule_label(payer_code: str | None, contract_number: str | None, name: str) -> str:
    if payer_code is None:
        return f"{name!r} (not linked to a contract)"
    return f"{name!r} of contract {contract_label(payer_code, contract_number)}"


class FeeScheduleRow(ImportRow):
    name: Name
    payer_code: Code | None = None
    contract_number: Code | None = Field(default=None, validate_default=True)
    effective_from: IsoDate
    effective_to: IsoDate | None = None

    _link = field_validator("contract_number")(_together)
    _end = field_validator("effective_to")(check_end)

    @property
    def contract(self) -> str:
        return contract_label(self.payer_code, self.contract_number)


class FeeScheduleLineRow(ImportRow):
    payer_code: Code | None = None
    contract_number: Code | None = Field(default=None, validate_default=True)
    fee_schedule_name: Name
    procedure_code: ProcedureCode
    modifier: Modifier | None = None
    amount: Amount

    _link = field_validator("contract_number")(_together)

    @property
    def fee_schedule(self) -> str:
        return schedule_label(self.payer_code, self.contract_number, self.fee_schedule_name)


async def _apply_schedules(session: AsyncSession, parsed: list[ParsedRow]) -> ImportStats:
    rows = [(line, cast(FeeScheduleRow, row)) for line, row in parsed]
    linked = [(line, row) for line, row in rows if row.payer_code is not None]
    codes = {row.payer_code for _, row in linked if row.payer_code is not None}
    contracts = await ids_by_payer_and_number(session, codes)
    reference = Reference(
        "contract",
        {contract_label(*key): contract_id for key, contract_id in contracts.items()},
        "no contract {value} (payer_code / contract_number)",
    )
    values = [
        {
            "contract_id": ids["contract"],
            **row.model_dump(include={"name", "effective_from", "effective_to"}),
        }
        for row, ids in resolve(linked, [reference])
    ]
    values += [
        {"contract_id": None, **row.model_dump(include={"name", "effective_from", "effective_to"})}
        for _, row in rows
        if row.payer_code is None
    ]
    return await repository.upsert_schedules(session, values)


async def _apply_lines(session: AsyncSession, rows: list[ParsedRow]) -> ImportStats:
    schedules = await repository.ids_by_key(session)
    reference = Reference(
        "fee_schedule",
        {schedule_label(*key): schedule_id for key, schedule_id in schedules.items()},
        "no fee schedule {value}",
    )
    values = [
        {
            "fee_schedule_id": ids["fee_schedule"],
            "procedure_code": row.procedure_code,
            "modifier": row.modifier or "",
            "amount": row.amount,
        }
        for row, ids in resolve(rows, [reference])
    ]
    return await repository.upsert_lines(session, values)


KINDS: dict[str, ImportKind] = {
    kind.name: kind
    for kind in (
        ImportKind(
            "fee-schedules",
            FeeScheduleRow,
            lambda row: (row.payer_code, row.contract_number, row.name),
            _apply_schedules,
        ),
        ImportKind(
            "fee-schedule-lines",
            FeeScheduleLineRow,
            lambda row: (
                row.payer_code,
                row.contract_number,
                row.fee_schedule_name,
                row.procedure_code,
                row.modifier or "",
            ),
            _apply_lines,
        ),
    )
}
