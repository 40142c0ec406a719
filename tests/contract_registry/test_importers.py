from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from contract_registry.plugin import PLUGIN
from rcm_kit.importing import ImportRejected, ImportStats, run_import
from rcm_kit.tenancy import Tenant
from tests.conftest import TenantFactory, run_rcm, tenant_session
from tests.contract_registry.factories import add_billing_entity, add_payer
from tests.reference.files import count, write_csv, write_ndjson

CONTRACT_COLUMNS = [
    "contract_number",
    "payer_code",
    "billing_entity_code",
    "name",
    "status",
    "effective_from",
    "effective_to",
]
SCHEDULE_COLUMNS = ["name", "payer_code", "contract_number", "effective_from", "effective_to"]
LINE_COLUMNS = [
    "payer_code",
    "contract_number",
    "fee_schedule_name",
    "procedure_code",
    "modifier",
    "amount",
]
CONTRACTS = [
    ["AET-1", "60054", "PHYS", "Aetna Professional", "ACTIVE", "2025-01-01", "2026-12-31"],
    ["AET-2", "60054", "HOSP", "Aetna Facility", "draft", "2026-01-01", ""],
    ["AET-1", "87726", "PHYS", "UHC Professional", "EXPIRED", "2022-01-01", "2024-12-31"],
]
TABLES = ("billing.payer_contract", "billing.fee_schedule", "billing.fee_schedule_line")


@pytest.fixture
async def tenant(make_tenant: TenantFactory) -> Tenant:
    """Payers 60054 and 87726, billing entities PHYS and HOSP."""
    tenant = await make_tenant()
    async with tenant_session(tenant) as session:
        await add_payer(session, "60054", "Aetna")
        await add_payer(session, "87726", "UnitedHealthcare")
        await add_billing_entity(session, "PHYS")
        await add_billing_entity(session, "HOSP")
    return tenant


async def import_file(tenant: Tenant, kind: str, path: Path) -> ImportStats:
    async with tenant_session(tenant) as session:
        return await run_import(session, PLUGIN.import_kinds[kind], path)


async def rejected_lines(tenant: Tenant, kind: str, path: Path) -> list[tuple[int, str]]:
    with pytest.raises(ImportRejected) as rejected:
        await import_file(tenant, kind, path)
    return rejected.value.errors


async def counts(tenant: Tenant) -> dict[str, int]:
    async with tenant_session(tenant) as session:
        return {table: await count(session, table) for table in TABLES}


async def import_contracts(tenant: Tenant, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "contracts.csv", CONTRACT_COLUMNS, *CONTRACTS)
    assert await import_file(tenant, "contracts", path) == ImportStats(inserted=3)


async def test_contracts_import_twice_changes_nothing_and_a_change_bumps_the_version(
    tenant: Tenant, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "contracts.csv", CONTRACT_COLUMNS, *CONTRACTS)

    assert await import_file(tenant, "contracts", path) == ImportStats(inserted=3)
    assert await import_file(tenant, "contracts", path) == ImportStats(unchanged=3)
    changed = [*CONTRACTS[:2], [*CONTRACTS[2][:6], "2025-03-31"]]
    path = write_csv(tmp_path / "changed.csv", CONTRACT_COLUMNS, *changed)
    assert await import_file(tenant, "contracts", path) == ImportStats(updated=1, unchanged=2)

    async with tenant_session(tenant) as session:
        rows = (
            await session.execute(
                sa.text(
                    "SELECT p.payer_code, c.contract_number, c.status, c.effective_to, c.version"
                    " FROM billing.payer_contract c JOIN ref.payer p USING (payer_id)"
                    " ORDER BY 1, 2"
                )
            )
        ).all()
    assert [(r.payer_code, r.contract_number, r.status, r.version) for r in rows] == [
        ("60054", "AET-1", "ACTIVE", 1),
        ("60054", "AET-2", "DRAFT", 1),
        ("87726", "AET-1", "EXPIRED", 2),
    ]
    assert rows[1].effective_to is None


async def test_contract_rows_name_each_bad_line_and_nothing_is_written(
    tenant: Tenant, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "contracts.csv",
        CONTRACT_COLUMNS,
        CONTRACTS[0],
        ["AET-3", "60054", "PHYS", "", "ACTIVE", "2025-01-01", ""],
        ["AET-4", "60054", "PHYS", "X", "RUNNING", "2025-01-01", ""],
        ["AET-5", "60054", "PHYS", "X", "ACTIVE", "2025-06-01", "2025-05-31"],
        ["AET-6", "99999", "PHYS", "X", "ACTIVE", "2025-01-01", ""],
        ["AET-7", "60054", "NOPE", "X", "ACTIVE", "2025/01/01", ""],
        ["AET-8", "60054", "NOPE", "X", "ACTIVE", "2025-01-01", ""],
        CONTRACTS[0],
    )

    errors = await rejected_lines(tenant, "contracts", path)

    reasons = dict(errors)
    assert [line for line, _ in errors] == [3, 4, 5, 6, 7, 8, 9]
    assert reasons[3] == "name: Field required"
    assert reasons[4].startswith("status: Input should be 'DRAFT', 'ACTIVE', 'EXPIRED'")
    assert reasons[5] == "effective_to: must be on or after effective_from"
    assert reasons[6] == "payer_code: no payer has the code '99999'"
    assert reasons[7] == "effective_from: must be a calendar date written YYYY-MM-DD"
    assert reasons[8] == "billing_entity_code: no billing entity has the code 'NOPE'"
    assert reasons[9] == "repeats the natural key of line 2"
    assert await counts(tenant) == dict.fromkeys(TABLES, 0)


async def test_fee_schedules_link_to_contracts_or_stand_alone(
    tenant: Tenant, tmp_path: Path
) -> None:
    await import_contracts(tenant, tmp_path)
    path = write_csv(
        tmp_path / "schedules.csv",
        SCHEDULE_COLUMNS,
        ["Professional", "60054", "AET-1", "2025-01-01", "2026-12-31"],
        ["Professional", "87726", "AET-1", "2022-01-01", ""],
        ["Laboratory", "60054", "AET-1", "2025-01-01", ""],
        ["Self-pay", "", "", "2025-01-01", ""],
    )

    assert await import_file(tenant, "fee-schedules", path) == ImportStats(inserted=4)
    assert await import_file(tenant, "fee-schedules", path) == ImportStats(unchanged=4)
    changed = write_csv(
        tmp_path / "changed.csv",
        SCHEDULE_COLUMNS,
        ["Self-pay", "", "", "2025-02-01", ""],
        ["Dental", "", "", "2025-02-01", ""],
    )
    assert await import_file(tenant, "fee-schedules", changed) == ImportStats(inserted=1, updated=1)
    async with tenant_session(tenant) as session:
        linked = (
            await session.execute(
                sa.text(
                    "SELECT s.name, c.contract_number FROM billing.fee_schedule s"
                    " LEFT JOIN billing.payer_contract c USING (contract_id) ORDER BY 1, 2"
                )
            )
        ).all()
    assert [tuple(r) for r in linked] == [
        ("Dental", None),
        ("Laboratory", "AET-1"),
        ("Professional", "AET-1"),
        ("Professional", "AET-1"),
        ("Self-pay", None),
    ]

    bad = write_csv(
        tmp_path / "bad.csv",
        SCHEDULE_COLUMNS,
        ["Other", "60054", "AET-404", "2025-01-01", ""],
        ["Other", "60054", "", "2025-01-01", ""],
        ["Other", "", "AET-1", "2025-01-01", ""],
        ["Other", "87726", "AET-2", "2025-01-01", ""],
    )
    errors = await rejected_lines(tenant, "fee-schedules", bad)
    assert errors == [
        (2, "contract: no contract 60054 / AET-404 (payer_code / contract_number)"),
        (
            3,
            "contract_number: required with payer_code (leave both empty for a schedule not "
            "linked to a contract)",
        ),
        (
            4,
            "contract_number: needs payer_code too (leave both empty for a schedule not "
            "linked to a contract)",
        ),
        (5, "contract: no contract 87726 / AET-2 (payer_code / contract_number)"),
    ]


async def test_fee_schedule_lines_price_codes_and_reimport_changes_nothing(
    tenant: Tenant, tmp_path: Path
) -> None:
    await import_contracts(tenant, tmp_path)
    schedules = write_csv(
        tmp_path / "schedules.csv",
        SCHEDULE_COLUMNS,
        ["Professional", "60054", "AET-1", "2025-01-01", ""],
        ["Professional", "", "", "2025-01-01", ""],
    )
    await import_file(tenant, "fee-schedules", schedules)
    lines = write_ndjson(
        tmp_path / "lines.ndjson",
        {"payer_code": "60054", "contract_number": "AET-1", "fee_schedule_name": "Professional",
         "procedure_code": "99213", "amount": "112.50"},
        {"payer_code": "60054", "contract_number": "AET-1", "fee_schedule_name": "Professional",
         "procedure_code": "99213", "modifier": "25", "amount": 112.5},
        {"payer_code": "60054", "contract_number": "AET-1", "fee_schedule_name": "Professional",
         "procedure_code": "j1100", "amount": 0},
        {"fee_schedule_name": "Professional", "procedure_code": "99213", "amount": "80"},
    )  # fmt: skip

    assert await import_file(tenant, "fee-schedule-lines", lines) == ImportStats(inserted=4)
    assert await import_file(tenant, "fee-schedule-lines", lines) == ImportStats(unchanged=4)
    repriced = write_csv(
        tmp_path / "repriced.csv",
        LINE_COLUMNS,
        ["", "", "Professional", "99213", "", "85.00"],
        ["", "", "Professional", "93000", "", "16.82"],
    )
    assert await import_file(tenant, "fee-schedule-lines", repriced) == ImportStats(
        inserted=1, updated=1
    )
    async with tenant_session(tenant) as session:
        rows = (
            await session.execute(
                sa.text(
                    "SELECT c.contract_number, l.procedure_code, l.modifier, l.amount"
                    " FROM billing.fee_schedule_line l JOIN billing.fee_schedule s"
                    " USING (fee_schedule_id) LEFT JOIN billing.payer_contract c USING"
                    " (contract_id) ORDER BY 1, 2, 3"
                )
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("AET-1", "99213", "", Decimal("112.50")),
        ("AET-1", "99213", "25", Decimal("112.50")),
        ("AET-1", "J1100", "", Decimal("0.00")),
        (None, "93000", "", Decimal("16.82")),
        (None, "99213", "", Decimal("85.00")),
    ]

    before = await counts(tenant)
    bad = write_csv(
        tmp_path / "bad.csv",
        LINE_COLUMNS,
        ["60054", "AET-1", "Professional", "9921", "", "10"],
        ["60054", "AET-1", "Professional", "99214", "2", "10"],
        ["60054", "AET-1", "Professional", "99215", "", "-1"],
        ["60054", "AET-1", "Professional", "99215", "", "10.005"],
        ["60054", "AET-1", "Radiology", "70450", "", "111.57"],
        ["87726", "AET-1", "Professional", "70450", "", "111.57"],
        ["60054", "AET-1", "Professional", "99215", "", ""],
    )
    errors = await rejected_lines(tenant, "fee-schedule-lines", bad)
    reasons = dict(errors)
    assert [line for line, _ in errors] == [2, 3, 4, 5, 6, 7, 8]
    assert reasons[2] == (
        "procedure_code: must be a 5-character CPT or HCPCS code, e.g. 99213, 0001F, J1100"
    )
    assert reasons[3] == "modifier: must be 2 letters or digits, e.g. 25, TC"
    assert reasons[4] == "amount: Input should be greater than or equal to 0"
    assert reasons[5] == "amount: Decimal input should have no more than 2 decimal places"
    assert reasons[6] == "fee_schedule: no fee schedule 'Radiology' of contract 60054 / AET-1"
    assert reasons[7] == "fee_schedule: no fee schedule 'Professional' of contract 87726 / AET-1"
    assert reasons[8] == "amount: Field required"
    assert await counts(tenant) == before


async def test_rcm_import_contracts_reports_bad_lines_then_imports_once(
    tenant: Tenant, tmp_path: Path, master_url: str, redis_url: str
) -> None:
    bad = write_csv(
        tmp_path / "bad.csv",
        CONTRACT_COLUMNS,
        CONTRACTS[0],
        ["AET-9", "00000", "PHYS", "X", "ACTIVE", "2025-01-01", ""],
    )
    good = write_csv(tmp_path / "good.csv", CONTRACT_COLUMNS, *CONTRACTS)

    async def rcm_import(path: Path) -> tuple[int, str, str]:
        result = await run_rcm(
            "import",
            "--tenant",
            tenant.slug,
            "contracts",
            str(path),
            master_url=master_url,
            redis_url=redis_url,
        )
        return result.returncode, result.stdout.strip(), result.stderr

    code, _, stderr = await rcm_import(bad)
    assert code == 1
    assert stderr.splitlines() == [
        f"{bad}:3: payer_code: no payer has the code '00000'",
        f"rcm import: {bad} rejected, nothing written",
    ]
    assert (await counts(tenant))["billing.payer_contract"] == 0
    assert (await rcm_import(good))[:2] == (0, "contracts: 3 inserted, 0 updated, 0 unchanged")
    assert (await rcm_import(good))[:2] == (0, "contracts: 0 inserted, 0 updated, 3 unchanged")
