"""Demo members, coverage and visits on top of the reference seed's payers and facilities.

Deterministic: one ``random.Random`` with a fixed seed draws every value in a fixed
order, and dates are offsets from anchors, so a second run changes nothing. Birth dates
hang on the first of the year and coverage dates on the first of the month, so they
only move when the year or month turns; visits hang on ``ctx.today`` (past 14 and next
30 days) so every sweep window has a roster. The rows go through the import kinds, as
a file would.

The mix gives sweeps something to find: most members hold one primary policy, some a
secondary beside it, some are dependents (child or spouse of the subscriber), some
policies lapsed or end within weeks, some members changed payer, and a few have no
coverage at all.
"""

from __future__ import annotations

import os
import random
import string
from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from eligibility_sweeps.member.importers import (
    KINDS,
    CoveragePolicyRow,
    MemberRow,
    ServiceEventRow,
)
from eligibility_sweeps.models import (
    Relationship,
    ServiceEventStatus,
    Transport,
    trading_partner,
    trading_partner_payer,
)
from rcm_kit.plugins import SeedContext
from rcm_reference.importers import ImportRow
from rcm_reference.models import payer as payer_table
from rcm_reference.seed import DEMO_FACILITIES, DEMO_PAYERS, DemoPayer, store

SEED = 270_271
SANDBOX_PARTNER = "Clearinghouse sandbox"
DEFAULT_SANDBOX_URL = "http://127.0.0.1:8090"
MEMBERS = 2_400
PAST_DAYS = 14
FUTURE_DAYS = 30

# fmt: off
FEMALE = (
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica",
    "Sarah", "Karen", "Lisa", "Nancy", "Betty", "Sandra", "Margaret", "Ashley", "Kimberly",
    "Emily", "Donna", "Michelle", "Carol", "Amanda", "Melissa", "Deborah", "Stephanie",
    "Rebecca", "Sharon", "Laura", "Cynthia", "Dorothy", "Amy", "Kathleen", "Angela",
    "Shirley", "Emma", "Brenda", "Pamela", "Nicole", "Anna", "Samantha", "Katherine",
    "Christine", "Debra", "Rachel", "Carolyn", "Janet", "Maria", "Olivia", "Heather",
    "Helen", "Catherine", "Diane", "Julie", "Victoria", "Lauren", "Kelly", "Christina",
    "Joan", "Evelyn", "Judith", "Guadalupe", "Rosa", "Sofia", "Camila", "Valentina",
    "Isabella", "Mia", "Priya", "Aaliyah", "Mei", "Fatima", "Hannah",
)
MALE = (
    "James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph", "Thomas",
    "Christopher", "Charles", "Daniel", "Matthew", "Anthony", "Mark", "Donald", "Steven",
    "Andrew", "Paul", "Joshua", "Kenneth", "Kevin", "Brian", "Timothy", "Ronald", "George",
    "Jason", "Edward", "Jeffrey", "Ryan", "Jacob", "Nicholas", "Gary", "Eric", "Jonathan",
    "Stephen", "Larry", "Justin", "Scott", "Brandon", "Benjamin", "Samuel", "Gregory",
    "Alexander", "Patrick", "Frank", "Raymond", "Jack", "Dennis", "Jerry", "Tyler", "Aaron",
    "Jose", "Adam", "Nathan", "Henry", "Zachary", "Douglas", "Peter", "Kyle", "Noah",
    "Ethan", "Jeremy", "Carlos", "Juan", "Luis", "Miguel", "Diego", "Mateo", "Omar",
    "Arjun", "Wei", "Hiroshi", "Tariq", "Elijah", "Liam", "Lucas", "Mason",
)
LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
    "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White",
    "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
    "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green",
    "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter",
    "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz", "Parker", "Cruz", "Edwards",
    "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy", "Cook", "Rogers",
    "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed", "Kelly",
    "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson", "Brooks", "Chavez",
    "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price", "Alvarez",
    "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez", "Powell",
    "Jenkins", "Perry", "Russell", "Sullivan", "Bell", "Coleman", "Butler", "Henderson",
    "Barnes", "Gonzales", "Fisher", "Vasquez", "Simmons", "Romero", "Jordan", "Patterson",
    "Alexander", "Hamilton", "Graham", "Reynolds", "Griffin", "Wallace", "Moreno", "West",
    "Cole", "Hayes", "Bryant", "Herrera", "Gibson", "Ellis", "Tran", "Medina", "Aguilar",
    "Stevens", "Murray", "Ford", "Castro", "Marshall", "Owens", "Harrison", "Fernandez",
    "McDonald", "Woods", "Washington", "Kennedy", "Wells", "Vargas", "Henry", "Chen",
    "Freeman", "Webb", "Tucker", "Guzman", "Burns", "Crawford", "Olson", "Simpson",
    "Porter", "Hunter", "Gordon", "Mendez", "Silva", "Shaw", "Snyder", "Mason", "Dixon",
    "Munoz", "Hunt", "Hicks", "Holmes", "Palmer", "Wagner", "Black", "Robertson", "Boyd",
    "Rose", "Stone", "Salazar", "Fox", "Warren", "Mills", "Meyer", "Rice", "Schmidt",
    "Garza", "Daniels", "Nakamura", "Okafor", "Kowalski", "O'Brien", "Delgado", "Nwosu",
)
# fmt: on

AGE_BANDS = ((0, 18), (18, 26), (26, 45), (45, 65), (65, 96))
AGE_WEIGHTS = (22, 8, 24, 26, 20)
ORIGINAL_MEDICARE = "04412"

# Card id shapes by payer: (prefix, digits). Medicare uses the MBI format instead.
CARD_SHAPES = {
    "60054": ("W", 9),
    "87726": ("", 9),
    "62308": ("U", 10),
    "84980": ("ZGP", 9),
    "00621": ("XOF", 9),
    "68069": ("U", 10),
    "61101": ("H", 8),
    "TXMCD": ("", 9),
    "20554": ("", 9),
    "99726": ("", 11),
}
# Letters the Medicare Beneficiary Identifier never uses.
MBI_LETTERS = "".join(c for c in string.ascii_uppercase if c not in "SLOIBZ")


# The clearinghouse sandbox's rules (services/clearinghouse-sandbox/README.md): a demo
# member for each, named after what the sandbox answers.
SANDBOX_PAYER = "60054"  # Aetna
SANDBOX_MEMBERS = (
    ("SBX-ACTIVE", "Active"),
    ("SBX-INACTIVE", "Inactive"),
    ("SBX-NOTFOUND", "Notfound"),
    ("SBX-BADID", "Badid"),
    ("SBX-OTHERPAYER", "Otherpayer"),
    ("SBX-PLANENDS", "Planends"),
    ("SBX-DEMOG", "Demographics"),
    ("SBX-NEWID", "Newid"),
    ("SBX-AAA42", "Payerbusy"),
    ("SBX-AAA79", "Badprovider"),
    ("SBX-999", "Rejected"),
    ("SBX-TA1", "Envelope"),
    ("SBX-401", "Unauthorized"),
    ("SBX-503", "Unavailable"),
    ("SBX-COREERR", "Coreerror"),
    ("SBX-HANG", "Timeout"),
    ("SBX-DELAYED", "Delayed"),
)


@dataclass
class _Plan:
    today: date
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))
    members: list[ImportRow] = field(default_factory=list)
    policies: list[ImportRow] = field(default_factory=list)
    events: list[ImportRow] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.payers = {p.code: p for p in DEMO_PAYERS if p.active}
        self.by_line: dict[str, list[DemoPayer]] = {}
        for payer in self.payers.values():
            self.by_line.setdefault(payer.line, []).append(payer)
        self.birth_anchor = date(self.today.year, 1, 1)
        self.month_anchor = self.today.replace(day=1)

    def digits(self, count: int) -> str:
        return "".join(self.rng.choice(string.digits) for _ in range(count))

    def card_id(self, payer: DemoPayer) -> str:
        if payer.code == ORIGINAL_MEDICARE:
            r = self.rng
            # MBI: C A AN N A AN N A A N N
            pattern = "CAXNAXNAANN"
            pools = {
                "C": "123456789",
                "A": MBI_LETTERS,
                "N": string.digits,
                "X": MBI_LETTERS + string.digits,
            }
            return "".join(r.choice(pools[p]) for p in pattern)
        prefix, count = CARD_SHAPES[payer.code]
        return prefix + self.digits(count)

    def months_ago(self, months: int) -> date:
        """The first day of the month ``months`` before this one."""
        index = self.month_anchor.year * 12 + self.month_anchor.month - 1 - months
        return date(index // 12, index % 12 + 1, 1)

    def birth_date(self, age_years: int) -> date:
        return self.birth_anchor - timedelta(days=age_years * 365 + self.rng.randrange(365))

    def build(self) -> None:
        for number in range(MEMBERS):
            self.add_member(f"MRN{1_000_001 + number}")
        self.add_sandbox_members()

    def add_sandbox_members(self) -> None:
        """One member per clearinghouse-sandbox rule, insured by Aetna under the rule's
        subscriber id, with a visit tomorrow: pick "Sandbox Inactive" to see that
        answer. Drawn without the generator, so the other members never change."""
        tomorrow = self.today + timedelta(days=1)
        for number, (rule, last) in enumerate(SANDBOX_MEMBERS):
            mrn = f"DEMO-{rule}"
            self.members.append(
                MemberRow(
                    external_id=mrn,
                    first_name="Sandbox",
                    last_name=last,
                    date_of_birth=date(1980, 1, 1) + timedelta(days=37 * number),
                    gender="F" if number % 2 else "M",
                )
            )
            self.policies.append(
                CoveragePolicyRow(
                    member_external_id=mrn,
                    payer_code=SANDBOX_PAYER,
                    subscriber_id=rule,
                    effective_from=date(self.today.year - 1, 1, 1),
                    effective_to=None,
                    priority=1,
                    relationship=Relationship.SELF,
                )
            )
            self.events.append(
                ServiceEventRow(
                    external_id=f"ENC-{rule}",
                    member_external_id=mrn,
                    facility_code=DEMO_FACILITIES[0][0],
                    service_date=tomorrow,
                    status=ServiceEventStatus.SCHEDULED,
                )
            )

    def add_member(self, mrn: str) -> None:
        r = self.rng
        gender = r.choices("FMU", weights=(51, 48, 1))[0]
        first = r.choice(FEMALE if gender == "F" else MALE if gender == "M" else FEMALE + MALE)
        last = r.choice(LAST)
        low, high = r.choices(AGE_BANDS, weights=AGE_WEIGHTS)[0]
        age = r.randrange(low, high)
        dob = self.birth_date(age)
        self.members.append(
            MemberRow(
                external_id=mrn, first_name=first, last_name=last, date_of_birth=dob, gender=gender
            )
        )
        self.add_coverage(mrn, age, last, dob)
        self.add_visits(mrn, age)

    def add_coverage(self, mrn: str, age: int, last: str, dob: date) -> None:
        r = self.rng
        roll = r.random()
        if age >= 65:
            line = "medicare"
        elif roll < 0.05:
            return  # uninsured: the sweep skips them
        elif roll < 0.20:
            line = "medicaid"
        elif roll < 0.23:
            line = "military"
        else:
            line = "commercial"
        if line == "medicare" and r.random() < 0.7:
            primary = self.payers[ORIGINAL_MEDICARE]
        else:  # any plan of the line; for Medicare, a Medicare Advantage plan
            primary = r.choice([p for p in self.by_line[line] if p.code != ORIGINAL_MEDICARE])

        relationship = Relationship.SELF
        if line in ("commercial", "military"):
            if age < 26 and r.random() < 0.8:
                relationship = Relationship.CHILD
            elif age >= 26 and r.random() < 0.15:
                relationship = Relationship.SPOUSE

        fate = r.random()
        began = r.randrange(1, 60)  # months ago
        end = None
        if fate < 0.06:  # lapsed: ended some months ago
            began = max(began, 6)
            end = self.months_ago(r.randrange(0, 5)) - timedelta(days=1)
        elif fate < 0.09:  # ends at the end of this month or the next
            end = self.months_ago(-1 - r.randrange(2)) - timedelta(days=1)
        elif fate < 0.14 and line == "commercial":  # changed payer: the old policy ended
            previous = r.choice([p for p in self.by_line["commercial"] if p is not primary])
            old_start = self.months_ago(began + r.randrange(12, 48))
            self.add_policy(mrn, previous, old_start, self.months_ago(began) - timedelta(days=1), 1)
        start = self.months_ago(began)
        self.add_policy(mrn, primary, start, end, 1, relationship, last, dob)

        secondary_odds = 0.35 if line == "medicare" else 0.08 if line == "commercial" else 0
        if r.random() < secondary_odds:
            choices = [p for p in self.by_line["commercial"] if p is not primary]
            self.add_policy(mrn, r.choice(choices), self.months_ago(r.randrange(1, 36)), None, 2)

    def add_policy(
        self,
        mrn: str,
        payer: DemoPayer,
        start: date,
        end: date | None,
        priority: int,
        relationship: Relationship = Relationship.SELF,
        last: str = "",
        dob: date | None = None,
    ) -> None:
        subscriber: dict[str, object] = {}
        if relationship is not Relationship.SELF and dob is not None:
            older = 20 + self.rng.randrange(20) if relationship is Relationship.CHILD else 0
            subscriber = {
                "subscriber_first_name": self.rng.choice(FEMALE + MALE),
                "subscriber_last_name": last,
                "subscriber_date_of_birth": dob.replace(year=dob.year - older, day=1)
                - timedelta(days=self.rng.randrange(300)),
            }
        self.policies.append(
            CoveragePolicyRow(
                member_external_id=mrn,
                payer_code=payer.code,
                subscriber_id=self.card_id(payer),
                effective_from=start,
                effective_to=end,
                priority=priority,
                relationship=relationship,
                **subscriber,
            )
        )

    def add_visits(self, mrn: str, age: int) -> None:
        r = self.rng
        visits = r.choices((0, 1, 2), weights=(22, 62, 16))[0]
        for _ in range(visits):
            offset = r.randrange(-PAST_DAYS, FUTURE_DAYS + 1)
            facility = DEMO_FACILITIES[
                r.choices((0, 1, 2, 3), weights=(20, 15, 60, 5) if age < 18 else (45, 30, 2, 23))[0]
            ][0]
            self.events.append(
                ServiceEventRow(
                    external_id=f"ENC{500_001 + len(self.events)}",
                    member_external_id=mrn,
                    facility_code=facility,
                    service_date=self.today + timedelta(days=offset),
                    status=self.visit_status(offset),
                )
            )

    def visit_status(self, offset: int) -> ServiceEventStatus:
        s = ServiceEventStatus
        options: tuple[ServiceEventStatus, ...]
        weights: tuple[int, ...]
        if offset < 0:
            options, weights = (s.COMPLETED, s.NO_SHOW, s.CANCELLED), (82, 9, 9)
        elif offset == 0:
            options, weights = (s.CHECKED_IN, s.SCHEDULED, s.COMPLETED, s.NO_SHOW), (40, 30, 25, 5)
        else:
            options, weights = (s.SCHEDULED, s.CANCELLED), (92, 8)
        return self.rng.choices(options, weights=weights)[0]


async def seed(ctx: SeedContext) -> str:
    plan = _Plan(ctx.today)
    plan.build()
    partner = await seed_sandbox_partner(ctx.session)
    stored = await store(
        ctx.session,
        KINDS,
        (
            ("members", plan.members),
            ("coverage-policies", plan.policies),
            ("service-events", plan.events),
        ),
    )
    return f"{partner}; {stored}"


async def seed_sandbox_partner(session: AsyncSession) -> str:
    """The demo's trading partner: the clearinghouse sandbox of ``make run`` (CAQH CORE
    MIME, the production default), routing every active demo payer. Idempotent by name;
    an existing partner (perhaps edited by hand) is left alone."""
    base = os.environ.get("CLEARINGHOUSE_SANDBOX_URL", DEFAULT_SANDBOX_URL).rstrip("/")
    inserted = await session.execute(
        insert(trading_partner)
        .values(
            name=SANDBOX_PARTNER,
            transport=Transport.CORE_MIME.value,
            endpoint_url=f"{base}/core",
            auth_type="none",
            sender_id="LKSHEALTH",
            receiver_id="SANDBOXCH",
            usage_indicator="T",
        )
        .on_conflict_do_nothing(index_elements=[trading_partner.c.name])
        .returning(trading_partner.c.trading_partner_id)
    )
    partner_id = inserted.scalar()
    if partner_id is None:
        return f"trading partner {SANDBOX_PARTNER!r} kept"
    codes = [p.code for p in DEMO_PAYERS if p.active]
    payer_ids = (
        await session.execute(
            sa.select(payer_table.c.payer_id).where(payer_table.c.payer_code.in_(codes))
        )
    ).scalars()
    await session.execute(
        sa.insert(trading_partner_payer),
        [{"trading_partner_id": partner_id, "payer_id": p} for p in payer_ids],
    )
    return f"trading partner {SANDBOX_PARTNER!r} at {base}/core"
