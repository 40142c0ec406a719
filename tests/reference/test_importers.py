from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from rcm_kit.importing import ImportRejected, ImportStats, run_import
from rcm_kit.tenancy import Tenant
from rcm_reference.importers import KINDS
from tests.conftest import TenantFactory, tenant_session
from tests.reference.files import count, write_csv, write_ndjson


@pytest.fixture
async def tenant(make_tenant: TenantFactory) -> Tenant:
    return await make_tenant()


async def import_file(tenant: Tenant, kind: str, path: Path) -> ImportStats:
    async with tenant_session(tenant) as session:
        return await run_import(session, KINDS[kind], path)


async def test_payers_import_and_reimport_changes_nothing(tenant: Tenant, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "payers.csv",
        ["payer_code", "name", "active"],
        ["60054", "Aetna", "true"],
        ["87726", "UnitedHealthcare", ""],
        ["41212", "Prairie Mutual", "No"],
    )

    assert await import_file(tenant, "payers", path) == ImportStats(inserted=3)
    assert await import_file(tenant, "payers", path) == ImportStats(unchanged=3)

    async with tenant_session(tenant) as session:
        rows = (await session.execute(sa.text("SELECT payer_code, active FROM ref.payer"))).all()
    assert dict(rows) == {"60054": True, "87726": True, "41212": False}


async def test_a_changed_row_updates_only_that_row(tenant: Tenant, tmp_path: Path) -> None:
    header = ["facility_code", "name", "npi"]
    first = write_csv(
        tmp_path / "a.csv", header, ["MAIN", "Main", "1740023613"], ["NORTH", "North", ""]
    )
    second = write_csv(
        tmp_path / "b.csv", header, ["MAIN", "Main Campus", "1740023613"], ["NORTH", "North", ""]
    )

    await import_file(tenant, "facilities", first)

    assert await import_file(tenant, "facilities", second) == ImportStats(updated=1, unchanged=1)


async def test_billing_entities_import_from_ndjson(tenant: Tenant, tmp_path: Path) -> None:
    path = write_ndjson(
        tmp_path / "entities.ndjson",
        {
            "billing_entity_code": "HOSP",
            "name": "Hospital, Inc.",
            "npi": 1882034577,
            "tax_id": "74-2318846",
        },
        {"billing_entity_code": "PHYS", "name": "Physician Group", "npi": None},
    )

    assert await import_file(tenant, "billing-entities", path) == ImportStats(inserted=2)
    assert await import_file(tenant, "billing-entities", path) == ImportStats(unchanged=2)


async def test_a_bad_file_names_every_bad_line_and_writes_nothing(
    tenant: Tenant, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "facilities.csv",
        ["facility_code", "name", "npi"],
        ["MAIN", "Main", "1740023613"],
        ["NORTH", "", ""],
        ["PEDS", "Children's", "12345"],
        ["MAIN", "Main again", ""],
    )

    with pytest.raises(ImportRejected) as rejected:
        await import_file(tenant, "facilities", path)

    assert rejected.value.errors == [
        (3, "name: Field required"),
        (4, "npi: must be 10 digits"),
        (5, "repeats the natural key of line 2"),
    ]
    async with tenant_session(tenant) as session:
        assert await count(session, "ref.facility") == 0


async def test_payer_flags_and_tax_ids_are_checked(tenant: Tenant, tmp_path: Path) -> None:
    payers = write_csv(tmp_path / "p.csv", ["payer_code", "name", "active"], ["1", "One", "maybe"])
    entities = write_csv(
        tmp_path / "b.csv", ["billing_entity_code", "name", "tax_id"], ["B", "Bee", "12-34"]
    )

    with pytest.raises(ImportRejected) as bad_flag:
        await import_file(tenant, "payers", payers)
    with pytest.raises(ImportRejected) as bad_tax_id:
        await import_file(tenant, "billing-entities", entities)

    assert bad_flag.value.errors[0][0] == 2
    assert bad_flag.value.errors[0][1].startswith("active: ")
    assert bad_tax_id.value.errors == [(2, "tax_id: must be a 9-digit tax id, e.g. 12-3456789")]
