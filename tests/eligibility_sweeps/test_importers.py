from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from eligibility_sweeps.member.importers import KINDS
from rcm_kit.importing import ImportRejected, ImportStats, run_import
from rcm_kit.tenancy import Tenant
from tests.conftest import TenantFactory, run_rcm, tenant_session
from tests.eligibility_sweeps.factories import add_facility, add_member, add_payer
from tests.reference.files import count, write_csv, write_ndjson

MEMBER_COLUMNS = ["external_id", "first_name", "last_name", "date_of_birth", "gender"]
POLICY_COLUMNS = [
    "member_external_id",
    "payer_code",
    "subscriber_id",
    "effective_from",
    "effective_to",
    "priority",
    "relationship",
    "subscriber_first_name",
    "subscriber_last_name",
    "subscriber_date_of_birth",
]
EVENT_COLUMNS = ["external_id", "member_external_id", "facility_code", "service_date", "status"]


@pytest.fixture
async def tenant(make_tenant: TenantFactory) -> Tenant:
    """A tenant with payers 60054 and 87726, facility MAIN and members M1, M2."""
    tenant = await make_tenant()
    async with tenant_session(tenant) as session:
        await add_payer(session, "60054", "Aetna")
        await add_payer(session, "87726", "UnitedHealthcare")
        await add_facility(session, "MAIN")
        await add_member(session, "M1")
        await add_member(session, "M2", first_name="Ben")
    return tenant


async def import_file(tenant: Tenant, kind: str, path: Path) -> ImportStats:
    async with tenant_session(tenant) as session:
        return await run_import(session, KINDS[kind], path)


async def rejected_lines(tenant: Tenant, kind: str, path: Path) -> list[tuple[int, str]]:
    with pytest.raises(ImportRejected) as rejected:
        await import_file(tenant, kind, path)
    return rejected.value.errors


async def counts(tenant: Tenant) -> dict[str, int]:
    async with tenant_session(tenant) as session:
        return {
            table: await count(session, table)
            for table in ("member.member", "member.coverage_policy", "service.service_event")
        }


async def test_members_import_and_reimport_changes_nothing(tenant: Tenant, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "members.csv",
        MEMBER_COLUMNS,
        ["MRN-1", "Ana", "García", "1980-05-17", "female"],
        ["MRN-2", "Ben", "O'Neil", "2019-01-31", ""],
        ["M1", "Ana", "Lee", "1980-05-17", ""],
    )

    assert await import_file(tenant, "members", path) == ImportStats(inserted=2, unchanged=1)
    assert await import_file(tenant, "members", path) == ImportStats(unchanged=3)
    async with tenant_session(tenant) as session:
        gender = await session.scalar(
            sa.text("SELECT gender FROM member.member WHERE external_id = 'MRN-1'")
        )
    assert gender == "F"


async def test_a_secondary_policy_imports_beside_the_primary(
    tenant: Tenant, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "policies.csv",
        POLICY_COLUMNS,
        ["M1", "60054", "W123456789", "2025-01-01", "", "1", "", "", "", ""],
        ["M1", "87726", "998877665", "2025-03-01", "2026-12-31", "2", "self", "", "", ""],
        ["M2", "60054", "W555000111", "2024-07-01", "", "", "child", "Ana", "Lee", "1980-05-17"],
    )

    assert await import_file(tenant, "coverage-policies", path) == ImportStats(inserted=3)
    assert await import_file(tenant, "coverage-policies", path) == ImportStats(unchanged=3)
    async with tenant_session(tenant) as session:
        rows = (
            await session.execute(
                sa.text(
                    "SELECT m.external_id, c.priority, c.relationship"
                    " FROM member.coverage_policy c JOIN member.member m USING (member_id)"
                    " ORDER BY 1, 2"
                )
            )
        ).all()
    assert [tuple(row) for row in rows] == [
        ("M1", 1, "self"),
        ("M1", 2, "self"),
        ("M2", 1, "child"),
    ]


async def test_service_events_import_from_ndjson(tenant: Tenant, tmp_path: Path) -> None:
    path = write_ndjson(
        tmp_path / "events.ndjson",
        {
            "external_id": "E1",
            "member_external_id": "M1",
            "facility_code": "MAIN",
            "service_date": "2026-12-01",
            "status": "SCHEDULED",
        },
        {
            "external_id": "E2",
            "member_external_id": "M2",
            "facility_code": "MAIN",
            "service_date": "2026-11-20",
            "status": "no-show",
        },
    )

    assert await import_file(tenant, "service-events", path) == ImportStats(inserted=2)
    assert await import_file(tenant, "service-events", path) == ImportStats(unchanged=2)
    async with tenant_session(tenant) as session:
        statuses = (
            await session.execute(
                sa.text("SELECT status FROM service.service_event ORDER BY external_id")
            )
        ).scalars()
        assert list(statuses) == ["SCHEDULED", "NO_SHOW"]


async def test_policy_rules_name_each_bad_line(tenant: Tenant, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "policies.csv",
        POLICY_COLUMNS,
        ["M1", "60054", "W1", "2025-01-01", "", "1", "", "", "", ""],
        ["M1", "87726", "", "2025-01-01", "", "", "", "", "", ""],
        ["M1", "87726", "X2", "01/02/2025", "", "", "", "", "", ""],
        ["M2", "87726", "X3", "2025-06-01", "2025-05-31", "", "", "", "", ""],
        ["M2", "60054", "X4", "2025-01-01", "", "0", "", "", "", ""],
        ["M2", "87726", "X5", "2025-01-01", "", "", "cousin", "", "", ""],
        ["M2", "87726", "X6", "2025-01-01", "", "", "Spouse", "Ana", "", ""],
    )
    before = await counts(tenant)

    errors = await rejected_lines(tenant, "coverage-policies", path)

    assert [line for line, _ in errors] == [3, 4, 5, 6, 7, 8]
    reasons = dict(errors)
    assert reasons[3] == "subscriber_id: Field required"
    assert reasons[4] == "effective_from: must be a calendar date written YYYY-MM-DD"
    assert reasons[5] == "effective_to: must be on or after effective_from"
    assert reasons[6].startswith("priority: ")
    assert reasons[7].startswith("relationship: ")
    assert reasons[8] == (
        "row: subscriber_last_name, subscriber_date_of_birth required when relationship is spouse"
    )
    assert await counts(tenant) == before


async def test_unknown_members_payers_and_facilities_are_refused_whole(
    tenant: Tenant, tmp_path: Path
) -> None:
    policies = write_csv(
        tmp_path / "policies.csv",
        POLICY_COLUMNS,
        ["M1", "60054", "W1", "2025-01-01", "", "", "", "", "", ""],
        ["MRN-404", "60054", "W2", "2025-01-01", "", "", "", "", "", ""],
        ["M2", "99999", "W3", "2025-01-01", "", "", "", "", "", ""],
        ["MRN-405", "88888", "W4", "2025-01-01", "", "", "", "", "", ""],
    )
    events = write_csv(
        tmp_path / "events.csv",
        EVENT_COLUMNS,
        ["E1", "M1", "MAIN", "2026-12-01", "SCHEDULED"],
        ["E2", "M1", "ELSEWHERE", "2026-12-01", "SCHEDULED"],
        ["E3", "MRN-404", "MAIN", "2026-12-01", "SCHEDULED"],
    )
    before = await counts(tenant)

    policy_errors = await rejected_lines(tenant, "coverage-policies", policies)
    event_errors = await rejected_lines(tenant, "service-events", events)

    assert policy_errors == [
        (3, "member_external_id: no member has this external id"),
        (4, "payer_code: no payer has the code '99999'"),
        (
            5,
            "member_external_id: no member has this external id; "
            "payer_code: no payer has the code '88888'",
        ),
    ]
    assert event_errors == [
        (3, "facility_code: no facility has the code 'ELSEWHERE'"),
        (4, "member_external_id: no member has this external id"),
    ]
    assert "MRN-40" not in repr(policy_errors + event_errors)  # the MRN is patient data
    assert await counts(tenant) == before


async def test_one_report_names_malformed_lines_and_unknown_references(
    tenant: Tenant, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "mixed.csv",
        EVENT_COLUMNS,
        ["E1", "M1", "MAIN", "2026-12-01", "SCHEDULED"],
        ["E2", "M1", "MAIN", "not-a-date", "SCHEDULED"],
        ["E3", "M2", "NOWHERE", "2026-12-02", "SCHEDULED"],
    )
    before = await counts(tenant)

    errors = await rejected_lines(tenant, "service-events", path)

    assert [line for line, _ in errors] == [3, 4]
    assert errors[0][1].startswith("service_date: ")
    assert errors[1][1] == "facility_code: no facility has the code 'NOWHERE'"
    assert await counts(tenant) == before


async def test_service_event_dates_and_statuses_are_checked(tenant: Tenant, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "events.csv",
        EVENT_COLUMNS,
        ["E1", "M1", "MAIN", "2026-02-30", "SCHEDULED"],
        ["E2", "M1", "MAIN", "2026-12-01", "DONE"],
        ["E3", "", "MAIN", "2026-12-01", ""],
    )

    errors = await rejected_lines(tenant, "service-events", path)

    assert [line for line, _ in errors] == [2, 3, 4]
    assert errors[0][1] == "service_date: must be a calendar date written YYYY-MM-DD"
    assert errors[1][1].startswith("status: Input should be 'SCHEDULED', 'CHECKED_IN'")
    assert errors[2][1] == "member_external_id: Field required; status: Field required"
    assert await counts(tenant) == {
        "member.member": 2,
        "member.coverage_policy": 0,
        "service.service_event": 0,
    }


async def test_rcm_import_reports_each_bad_line_and_writes_nothing(
    tenant: Tenant, tmp_path: Path, master_url: str, redis_url: str
) -> None:
    bad = write_csv(
        tmp_path / "members.csv",
        MEMBER_COLUMNS,
        ["MRN-1", "Ana", "Lee", "1980-05-17", "F"],
        ["MRN-2", "", "Lee", "1980-05-17", ""],
        ["MRN-3", "Cy", "Lee", "17/05/1980", ""],
        ["MRN-4", "Di", "Lee", "2999-01-01", ""],
        ["MRN-5", "Ed", "Lee", "1980-05-17", "Q"],
    )
    good = write_csv(
        tmp_path / "good.csv", MEMBER_COLUMNS, ["MRN-1", "Ana", "Lee", "1980-05-17", "F"]
    )

    result = await run_rcm(
        "import",
        "--tenant",
        tenant.slug,
        "members",
        str(bad),
        master_url=master_url,
        redis_url=redis_url,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"{bad}:3: first_name: Field required",
        f"{bad}:4: date_of_birth: must be a calendar date written YYYY-MM-DD",
        f"{bad}:5: date_of_birth: is in the future",
        f"{bad}:6: gender: must be F, M or U (female, male, unknown)",
        f"rcm import: {bad} rejected, nothing written",
    ]
    assert (await counts(tenant))["member.member"] == 2

    for expected in ("1 inserted, 0 updated, 0 unchanged", "0 inserted, 0 updated, 1 unchanged"):
        result = await run_rcm(
            "import",
            "--tenant",
            tenant.slug,
            "members",
            str(good),
            master_url=master_url,
            redis_url=redis_url,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"members: {expected}"
