"""Demo contracts, fee schedules and expiry alerts over the reference seed's payers and
billing entities (read from ``ref.*``, so imported ones take part too).

Deterministic: one ``random.Random`` with a fixed seed decides, in a fixed order, which
payer contracts with which billing entity, each contract's term, whether it has a prior
term or a renewal in draft, and which fee schedules and lines it has. Natural keys
(contract numbers, schedule names) never depend on the date, so a second run upserts the
same rows. Dates are offsets from ``ctx.today`` so the screen always has something to
show: contracts ending today and within 30, 60 and 90 days, ACTIVE ones already past their
end (they read EXPIRED), open-ended ones, prior terms (EXPIRED, a few TERMINATED),
telehealth addenda and renewals in DRAFT. Run on a later day, the seed moves those dates along (and bumps the
contracts' versions) so the windows stay filled.

Contracts and fee schedules go through the import kinds, as a file would.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contract_registry.contract.importers import KINDS as CONTRACT_KINDS
from contract_registry.contract.importers import ContractRow
from contract_registry.expiry_alert import repository as alerts
from contract_registry.expiry_alert.schemas import default_subject
from contract_registry.fee_schedule.importers import KINDS as SCHEDULE_KINDS
from contract_registry.fee_schedule.importers import FeeScheduleLineRow, FeeScheduleRow
from contract_registry.models import ContractStatus
from rcm_kit.importing import ImportKind, ImportStats
from rcm_kit.plugins import SeedContext
from rcm_reference.importers import ImportRow
from rcm_reference.repository import list_billing_entities, list_payers

SEED = 837_835
KINDS: dict[str, ImportKind] = {**CONTRACT_KINDS, **SCHEDULE_KINDS}

# Where current terms end, relative to today: every expiring-soon window gets some, some
# ACTIVE contracts are already past their end, some have no end. Dealt out in a shuffled
# order; ``None`` is open-ended, the rest of the contracts end 4 months to 2 years out.
ENDINGS: tuple[int | None, ...] = (
    *(0, 9, 23),  # within 30 days (today included)
    *(38, 52),  # within 60
    *(66, 84),  # within 90
    *(-1, -20, -64),  # past their end, still stored ACTIVE: they read EXPIRED
    *(None,) * 4,
)

AGREEMENTS = {
    "HOSP": ("Facility Services Agreement", "facility"),
    "PHYS": ("Professional Services Agreement", "professional"),
    "ASC": ("Ambulatory Surgery Center Agreement", "asc"),
}
SCHEDULE_NAMES = {"professional": "Professional", "facility": "Facility", "asc": "ASC"}

# (procedure code, modifier, a typical allowed amount in USD) by kind of schedule.
# fmt: off
PROCEDURES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "professional": (
        ("99202", "", "72.49"), ("99203", "", "112.05"), ("99213", "", "92.47"),
        ("99213", "25", "92.47"), ("99214", "", "130.85"), ("99215", "", "184.09"),
        ("99396", "", "141.32"), ("93000", "", "16.82"), ("36415", "", "3.00"),
        ("90471", "", "17.00"), ("20610", "", "55.12"), ("G0439", "", "129.54"),
    ),
    "facility": (
        ("80053", "", "10.56"), ("85025", "", "7.77"), ("71046", "", "30.54"),
        ("74177", "", "320.18"), ("93306", "", "215.63"), ("99284", "", "183.00"),
        ("36415", "", "3.00"), ("70450", "", "111.57"), ("J1100", "", "0.12"),
    ),
    "asc": (
        ("29881", "", "1298.44"), ("66984", "RT", "1046.20"), ("66984", "LT", "1046.20"),
        ("45378", "", "404.46"), ("43239", "", "512.31"), ("64483", "", "403.87"),
        ("G0121", "", "404.46"),
    ),
}
# fmt: on
UNLINKED_SCHEDULES = ("Self-Pay Standard Rates", "Out-of-Network Usual and Customary")


def _prefix(name: str) -> str:
    """AET for Aetna, BCBSOT for Blue Cross Blue Shield of Texas: a payer's number prefix."""
    words: list[str] = re.findall(r"[A-Za-z]+", name)
    if len(words) == 1:
        return words[0][:3].upper()
    return "".join(word[0] for word in words).upper()[:6]


def _entity_tag(code: str) -> str:
    return code.rsplit("-", 1)[-1].upper()


@dataclass
class _Plan:
    today: date
    payers: list[Any]
    entities: list[Any]
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))
    contracts: list[ImportRow] = field(default_factory=list)
    schedules: list[ImportRow] = field(default_factory=list)
    lines: list[ImportRow] = field(default_factory=list)

    def days(self, offset: int) -> date:
        return self.today + timedelta(days=offset)

    def build(self) -> None:
        pairs = [
            (payer, entity)
            for payer in self.payers
            for entity in self.entities
            if self.rng.random() < 0.9  # not every payer contracts with every entity
        ]
        current = [pair for pair in pairs if pair[0].active]
        endings: list[int | None] = list(ENDINGS)
        endings += [self.rng.randrange(120, 730) for _ in range(len(current) - len(endings))]
        self.rng.shuffle(endings)
        dealt = iter(endings)
        for index, (payer, entity) in enumerate(pairs):
            self.add_pair(payer, entity, next(dealt) if payer.active else None, index)
        for name in UNLINKED_SCHEDULES:
            start = self.today.replace(month=1, day=1)
            self.add_schedule(None, None, name, start, None, "professional", Decimal("1.00"))

    def add_pair(self, payer: Any, entity: Any, ending: int | None, index: int) -> None:
        r = self.rng
        agreement, kind = AGREEMENTS.get(
            _entity_tag(entity.billing_entity_code), ("Provider Agreement", "professional")
        )
        number = (
            f"{_prefix(payer.name)}-{_entity_tag(entity.billing_entity_code)}-{101 + index:04d}"
        )
        years = r.choice((1, 2, 3))
        if ending is None:
            end = None
            start = self.days(-r.randrange(60, 900)).replace(day=1)
        else:
            end = self.days(ending)
            start = end - timedelta(days=365 * years) + timedelta(days=1)
        status = ContractStatus.ACTIVE
        if not payer.active:  # a retired payer: its contract was ended early
            status = ContractStatus.TERMINATED
            end = self.days(-r.randrange(30, 300))
            start = min(start, end - timedelta(days=365))
        rate = Decimal(str(round(r.uniform(0.85, 1.6), 2)))

        schedule = f"{payer.name} {SCHEDULE_NAMES[kind]} Fee Schedule"

        def contract(
            suffix: str,
            name: str,
            status: ContractStatus,
            begin: date,
            until: date | None,
            schedule: str = schedule,
            kind: str = kind,
        ) -> None:
            self.contracts.append(
                ContractRow(
                    contract_number=f"{number}{suffix}",
                    payer_code=payer.payer_code,
                    billing_entity_code=entity.billing_entity_code,
                    name=name,
                    status=status,
                    effective_from=begin,
                    effective_to=until,
                )
            )
            # Most contracts carry their schedule; a few older ones were never keyed in.
            if suffix != "-P" or r.random() < 0.6:
                self.add_schedule(
                    payer.payer_code, f"{number}{suffix}", schedule, begin, until, kind, rate
                )

        name = f"{payer.name} {agreement}"
        contract("", name, status, start, end)
        if index % 4 == 0 and kind != "asc":
            self.add_schedule(
                payer.payer_code, number, "Laboratory Carve-out", start, end, "facility", rate
            )
        if kind == "professional" and r.random() < 0.8:  # co-terminous with the agreement
            contract(
                "-A",
                f"{payer.name} Telehealth Services Addendum",
                status,
                start,
                end,
                schedule="Telehealth Fee Schedule",
            )
        if r.random() < 0.8:  # the term before this one
            prior_end = start - timedelta(days=1)
            prior_status = ContractStatus.TERMINATED if r.random() < 0.2 else ContractStatus.EXPIRED
            contract(
                "-P",
                f"{name} (prior term)",
                prior_status,
                prior_end - timedelta(days=365 * 2) + timedelta(days=1),
                prior_end,
            )
        if (
            status is ContractStatus.ACTIVE
            and end is not None
            and ending is not None
            and 0 <= ending <= 90
            and r.random() < 0.7
        ):  # renewal being negotiated
            renewal_start = end + timedelta(days=1)
            contract(
                "-R",
                f"{name} (renewal)",
                ContractStatus.DRAFT,
                renewal_start,
                renewal_start + timedelta(days=365 * 2 - 1),
                schedule=f"{schedule} (proposed)",
            )

    def add_schedule(
        self,
        payer_code: str | None,
        number: str | None,
        name: str,
        start: date,
        end: date | None,
        kind: str,
        rate: Decimal,
    ) -> None:
        self.schedules.append(
            FeeScheduleRow(
                name=name,
                payer_code=payer_code,
                contract_number=number,
                effective_from=start,
                effective_to=end,
            )
        )
        pool = PROCEDURES[kind]
        for code, modifier, base in sorted(self.rng.sample(pool, k=self.rng.randrange(4, 8))):
            self.lines.append(
                FeeScheduleLineRow(
                    payer_code=payer_code,
                    contract_number=number,
                    fee_schedule_name=name,
                    procedure_code=code,
                    modifier=modifier or None,
                    amount=(Decimal(base) * rate).quantize(Decimal("0.01")),
                )
            )


def _alerts(payers: list[Any], entities: list[Any]) -> list[dict[str, Any]]:
    """All payers at 30 days, one payer at 60, one billing entity at 90."""
    payer = next((p for p in payers if p.payer_code == "60054"), payers[0])
    entity = next((e for e in entities if e.billing_entity_code == "LKS-HOSP"), entities[0])
    scopes: list[tuple[Any, Any, int, list[str], str]] = [
        (
            None,
            None,
            30,
            ["revenue-cycle@example.org", "contracting@example.org"],
            default_subject(30),
        ),
        (
            payer.payer_id,
            None,
            60,
            ["payer-relations@example.org"],
            f"{payer.name} contracts up for renewal (60 days)",
        ),
        (
            None,
            entity.billing_entity_id,
            90,
            ["cfo.office@example.com", "managed-care@example.org"],
            f"{entity.name}: contracts expiring within 90 days",
        ),
    ]
    return [
        {
            "payer_id": payer_id,
            "billing_entity_id": entity_id,
            "lead_days": lead_days,
            "recipients": recipients,
            "subject": subject,
        }
        for payer_id, entity_id, lead_days, recipients, subject in scopes
    ]


async def _store(session: AsyncSession, kind: str, rows: list[ImportRow]) -> ImportStats:
    return await KINDS[kind].apply(session, list(enumerate(rows, start=1)))


async def seed(ctx: SeedContext) -> str:
    payers, _ = await list_payers(ctx.session, cursor=None, limit=500)
    entities, _ = await list_billing_entities(ctx.session, cursor=None, limit=500)
    if not payers or not entities:
        return "no payers or billing entities to contract with: nothing seeded"
    ordered_payers = sorted(payers, key=lambda p: p.payer_code)
    ordered_entities = sorted(entities, key=lambda e: e.billing_entity_code)
    plan = _Plan(ctx.today, ordered_payers, ordered_entities)
    plan.build()
    total = ImportStats()
    total += await _store(ctx.session, "contracts", plan.contracts)
    total += await _store(ctx.session, "fee-schedules", plan.schedules)
    total += await _store(ctx.session, "fee-schedule-lines", plan.lines)
    alert_rows = _alerts(ordered_payers, ordered_entities)
    total += await alerts.upsert_alerts(ctx.session, alert_rows)
    return (
        f"{len(plan.contracts)} contracts, {len(plan.schedules)} fee-schedules, "
        f"{len(plan.lines)} fee-schedule-lines, {len(alert_rows)} expiry alerts "
        f"({total.inserted} inserted, {total.updated} updated)"
    )
