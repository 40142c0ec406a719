"""Demo reference data: a small health system, its billing entities and real-looking payers.

The rows go through the import kinds, so the seed is validated like a file and upserts
by natural key: a second run changes nothing. The sweeps seed builds on these codes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from rcm_kit.importing import ImportKind, ImportStats
from rcm_kit.plugins import SeedContext
from rcm_reference.importers import KINDS, BillingEntityRow, FacilityRow, ImportRow, PayerRow


def npi(base: str) -> str:
    """``base`` (9 digits) with its NPI check digit: Luhn over the ``80840`` prefix (CMS)."""
    total = 0
    for position, digit in enumerate(int(d) for d in reversed("80840" + base)):
        if position % 2 == 0:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return base + str(-total % 10)


@dataclass(frozen=True)
class DemoPayer:
    code: str
    name: str
    # commercial | medicare | medicaid | military: how the sweeps seed assigns plans.
    line: str
    active: bool = True


# X12 payer ids as clearinghouses publish them.
DEMO_PAYERS: tuple[DemoPayer, ...] = (
    DemoPayer("60054", "Aetna", "commercial"),
    DemoPayer("87726", "UnitedHealthcare", "commercial"),
    DemoPayer("62308", "Cigna", "commercial"),
    DemoPayer("84980", "Blue Cross Blue Shield of Texas", "commercial"),
    DemoPayer("00621", "Blue Cross Blue Shield of Illinois", "commercial"),
    DemoPayer("68069", "Ambetter from Superior HealthPlan", "commercial"),
    DemoPayer("61101", "Humana", "medicare"),
    DemoPayer("04412", "Medicare Part B (Novitas Solutions, JH)", "medicare"),
    DemoPayer("TXMCD", "Texas Medicaid (TMHP)", "medicaid"),
    DemoPayer("20554", "Molina Healthcare of Texas", "medicaid"),
    DemoPayer("99726", "TRICARE West (TriWest)", "military"),
    DemoPayer("41212", "Prairie Mutual Health Plan (retired)", "commercial", active=False),
)

# (code, name): the sweeps seed picks facilities by these codes.
DEMO_FACILITIES: tuple[tuple[str, str], ...] = (
    ("LKS-MAIN", "Lakeshore Regional Medical Center"),
    ("LKS-NORTH", "Lakeshore North Family Clinic"),
    ("LKS-PEDS", "Lakeshore Children's Clinic"),
    ("LKS-ORTHO", "Lakeshore Orthopedics & Sports Medicine"),
)

_FACILITIES = [
    FacilityRow(facility_code=code, name=name, npi=npi(base))
    for (code, name), base in zip(
        DEMO_FACILITIES, ("174002361", "128847302", "159304718", "136650294"), strict=True
    )
]
_PAYERS = [PayerRow(payer_code=p.code, name=p.name, active=p.active) for p in DEMO_PAYERS]
_BILLING_ENTITIES = [
    BillingEntityRow(
        billing_entity_code="LKS-HOSP",
        name="Lakeshore Regional Hospital, Inc.",
        npi=npi("188203457"),
        tax_id="74-2318846",
    ),
    BillingEntityRow(
        billing_entity_code="LKS-PHYS",
        name="Lakeshore Physician Group, PA",
        npi=npi("145561920"),
        tax_id="74-2907713",
    ),
    BillingEntityRow(
        billing_entity_code="LKS-ASC",
        name="Lakeshore Surgery Center, LLC",
        npi=npi("167734085"),
        tax_id="46-1180352",
    ),
]


async def store(
    session: AsyncSession,
    kinds: Mapping[str, ImportKind],
    batches: Sequence[tuple[str, Sequence[ImportRow]]],
) -> str:
    """Upsert each batch of rows through its import kind; a one-line summary."""
    total = ImportStats()
    counts = []
    for kind, rows in batches:
        total += await kinds[kind].apply(session, list(enumerate(rows, start=1)))
        counts.append(f"{len(rows)} {kind}")
    return f"{', '.join(counts)} ({total.inserted} inserted, {total.updated} updated)"


async def seed(ctx: SeedContext) -> str:
    return await store(
        ctx.session,
        KINDS,
        (
            ("facilities", _FACILITIES),
            ("payers", _PAYERS),
            ("billing-entities", _BILLING_ENTITIES),
        ),
    )
