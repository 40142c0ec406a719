"""``rcm import`` kind ``contracts``: one row per contract, upserted by payer_code +
contract_number. A contract whose values change gets a new ``version``, so an edit dialog
opened before the import answers 412 instead of overwriting it."""

from __future__ import annotations

from operator import attrgetter
from typing import Annotated, Any, cast

from pydantic import BeforeValidator, ValidationInfo, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from contract_registry.models import ContractStatus, payer_contract
from rcm_kit.importing import ImportKind, ImportStats, ParsedRow, upsert
from rcm_reference.importers import Code, ImportRow, IsoDate, Name, Reference, resolve
from rcm_reference.models import billing_entity, payer
from rcm_reference.repository import ids_by_code


def upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def check_end(value: Any, info: ValidationInfo) -> Any:
    start = info.data.get("effective_from")
    if value is not None and start is not None and value < start:
        raise ValueError("must be on or after effective_from")
    return value


class ContractRow(ImportRow):
    contract_number: Code
    payer_code: Code
    billing_entity_code: Code
    name: Name
    status: Annotated[ContractStatus, BeforeValidator(upper)]
    effective_from: IsoDate
    effective_to: IsoDate | None = None

    _end = field_validator("effective_to")(check_end)


async def _apply(session: AsyncSession, parsed: list[ParsedRow]) -> ImportStats:
    rows = [(line, cast(ContractRow, row)) for line, row in parsed]
    payers = await ids_by_code(session, payer, (row.payer_code for _, row in rows))
    entities = await ids_by_code(session, billing_entity, (r.billing_entity_code for _, r in rows))
    references = [
        Reference("payer_code", payers, "no payer has the code {value!r}"),
        Reference("billing_entity_code", entities, "no billing entity has the code {value!r}"),
    ]
    values = [
        {
            **row.model_dump(exclude={"payer_code", "billing_entity_code"}),
            "payer_id": ids["payer_code"],
            "billing_entity_id": ids["billing_entity_code"],
        }
        for row, ids in resolve(rows, references)
    ]
    return await upsert(
        session,
        payer_contract,
        values,
        key=["payer_id", "contract_number"],
        compare=["billing_entity_id", "name", "status", "effective_from", "effective_to"],
        bump="version",
    )


KINDS: dict[str, ImportKind] = {
    "contracts": ImportKind(
        "contracts", ContractRow, attrgetter("payer_code", "contract_number"), _apply
    ),
}
