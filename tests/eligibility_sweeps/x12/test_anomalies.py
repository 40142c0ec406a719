"""Anomaly codes of a RECEIVED 271 (issue 4)."""

from __future__ import annotations

from datetime import date

import pytest

from eligibility_sweeps.x12.anomalies import (
    Anomaly,
    PreviousCheck,
    SentIdentity,
    detect_anomalies,
    normalise_name,
    snapshot,
)
from eligibility_sweeps.x12.build270 import (
    Dependent,
    Inquiry,
    Payer,
    PersonName,
    Provider,
    Subscriber,
)
from eligibility_sweeps.x12.read271 import EligibilityResponse, parse_271
from tests.eligibility_sweeps.x12.factories import SUBSCRIBER_271, interchange, response_271
from tests.eligibility_sweeps.x12.samples import sample

DAY = date(2025, 3, 1)
JANE = SentIdentity(
    member_id="W999", name=PersonName(last="DOE", first="JANE"), birth_date=date(1980, 1, 1)
)
ACTIVE = ("DMG*D8*19800101*F", "EB*1**30**GOLD PLAN")


def read(*segments: str) -> EligibilityResponse:
    return parse_271(response_271(*segments), service_date=DAY)


def detect(
    response: EligibilityResponse,
    *,
    sent: SentIdentity = JANE,
    previous: PreviousCheck | None = None,
) -> list[Anomaly]:
    return detect_anomalies(response, sent=sent, service_date=DAY, previous=previous)


def test_clean_active_response_has_no_anomaly() -> None:
    assert detect(read(*ACTIVE)) == []


def test_inactive_sample_is_coverage_inactive() -> None:
    response = parse_271(sample("synthetic_271_inactive_EB6.x12"), service_date=DAY)
    sent = SentIdentity(
        member_id="W123456789",
        name=PersonName(last="Doe", first="John"),
        birth_date=date(1975, 5, 15),
    )

    assert detect(response, sent=sent) == [Anomaly.COVERAGE_INACTIVE]


def test_aaa75_sample_is_member_not_found() -> None:
    response = parse_271(sample("synthetic_271_aaa75_subscriber_not_found.x12"), service_date=DAY)
    sent = SentIdentity(
        member_id="W000000000",
        name=PersonName(last="DOE", first="JANE"),
        birth_date=date(1980, 1, 1),
    )

    assert detect(response, sent=sent) == [Anomaly.MEMBER_NOT_FOUND]


def test_cms_eb_r_sample_in_a_5010_envelope_is_other_payer_primary() -> None:
    # Wrapped exactly as test_read271 does: the only public EB*R sample is 4010.
    text = (
        sample("oop_271_4010_cms_hets_other_payer_EB_R.x12")
        .replace("*U*00401*", "*^*00501*")
        .replace("004010X092A1", "005010X279A1")
        .replace("ST*271*333333333~", "ST*271*333333333*005010X279A1~")
    )
    day = date(2009, 5, 1)
    response = parse_271(text, service_date=day)
    sent = SentIdentity(
        member_id="HICN", name=PersonName(last="LNAME", first="FNAME"), birth_date=date(1920, 4, 1)
    )

    # INS*Y*18*001*25 is set but the id is the one we sent: no MEMBER_ID_CHANGED.
    assert detect_anomalies(response, sent=sent, service_date=day, previous=None) == [
        Anomaly.OTHER_PAYER_PRIMARY
    ]


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        (("EB*R*IND*30", "LS*2120", "NM1*PRP*2*OTHER PLAN", "LE*2120"), True),
        (("EB*R*IND*30",), True),
        (("EB*R*IND*30*12", "LS*2120", "NM1*SEP*2*OTHER PLAN", "LE*2120"), True),
        (("EB*R*IND*30", "LS*2120", "NM1*SEP*2*OTHER PLAN", "LE*2120"), False),
        (("EB*R*IND*30", "LS*2120", "NM1*TTP*2*OTHER PLAN", "LE*2120"), False),
        (("EB*R*IND*30", "DTP*292*RD8*20240101-20241231"), False),
    ],
    ids=["prp", "no-entity", "msp-type", "secondary", "tertiary", "ended-before-service"],
)
def test_other_payer_primary_rule(segments: tuple[str, ...], expected: bool) -> None:
    anomalies = detect(read(*ACTIVE, *segments))

    assert (Anomaly.OTHER_PAYER_PRIMARY in anomalies) is expected


def test_other_payer_on_subscriber_loop_does_not_count_for_a_dependent_patient() -> None:
    response = read(
        *ACTIVE,
        "EB*R*IND*30",
        "HL*4*3*23*0",
        "NM1*03*1*DOE*JIM",
        "DMG*D8*20100101*M",
        "EB*1**30",
    )
    sent = SentIdentity(
        member_id="W999", name=PersonName(last="DOE", first="JIM"), birth_date=date(2010, 1, 1)
    )

    assert detect(response, sent=sent) == []


@pytest.mark.parametrize(
    ("end", "expected"),
    [("20250331", True), ("20250401", False), ("20250301", True)],
    ids=["day-30", "day-31", "service-day"],
)
def test_plan_ends_soon_boundary(end: str, expected: bool) -> None:
    anomalies = detect(read(*ACTIVE, f"DTP*347*D8*{end}"))

    assert (Anomaly.PLAN_ENDS_SOON in anomalies) is expected


def test_plan_end_on_the_eb_line_counts_too() -> None:
    response = read("DMG*D8*19800101*F", "EB*1**30", "DTP*292*RD8*20250101-20250320")

    assert detect(response) == [Anomaly.PLAN_ENDS_SOON]


@pytest.mark.parametrize(
    "name",
    [
        "NM1*IL*1*doe*jane****MI*W999",
        "NM1*IL*1*DÖE*JÁNE****MI*W999",
        "NM1*IL*1*DOE JR*JANE****MI*W999",
    ],
    ids=["case", "accents", "suffix-in-last-name"],
)
def test_name_spelled_differently_is_not_a_mismatch(name: str) -> None:
    body = [s for s in SUBSCRIBER_271 if not s.startswith("NM1*IL")]
    response = parse_271(interchange([*body, name, *ACTIVE]), service_date=DAY)
    sent = SentIdentity(
        member_id="W999",
        name=PersonName(last="Doe", first="Jane", suffix="Jr"),
        birth_date=date(1980, 1, 1),
    )

    assert detect(response, sent=sent) == []


def test_dob_differing_is_a_demographic_mismatch() -> None:
    assert detect(read("DMG*D8*19800102*F", "EB*1**30")) == [Anomaly.DEMOGRAPHIC_MISMATCH]


def test_first_name_differing_is_a_demographic_mismatch() -> None:
    sent = SentIdentity(
        member_id="W999", name=PersonName(last="DOE", first="JOAN"), birth_date=date(1980, 1, 1)
    )

    assert detect(read(*ACTIVE), sent=sent) == [Anomaly.DEMOGRAPHIC_MISMATCH]


def test_missing_returned_dob_is_not_a_mismatch() -> None:
    assert detect(read("EB*1**30")) == []


def test_normalise_name() -> None:
    assert normalise_name("Müller-Smith, Jr.") == normalise_name("MULLER SMITH") == "MULLERSMITH"
    assert normalise_name("O'Brien III") == "OBRIEN"


def test_member_id_returned_differs_from_the_one_sent() -> None:
    sent = SentIdentity(
        member_id="W111", name=PersonName(last="DOE", first="JANE"), birth_date=date(1980, 1, 1)
    )

    assert detect(read(*ACTIVE, "INS*Y*18*001*25"), sent=sent) == [Anomaly.MEMBER_ID_CHANGED]


def test_prior_id_reference_means_the_member_id_changed() -> None:
    assert detect(read("REF*Q4*W000", *ACTIVE)) == [Anomaly.MEMBER_ID_CHANGED]


def test_member_id_differing_only_by_case_and_spaces_is_the_same() -> None:
    sent = SentIdentity(
        member_id=" w999 ", name=PersonName(last="DOE", first="JANE"), birth_date=date(1980, 1, 1)
    )

    assert detect(read(*ACTIVE), sent=sent) == []


def test_dependent_is_compared_against_the_dependent_sent() -> None:
    inquiry = Inquiry(
        payer=Payer(code="99999", name="EXAMPLE HEALTH PLAN"),
        provider=Provider(npi="1234567893", name="EXAMPLE CLINIC"),
        subscriber=Subscriber(
            member_id="W999", name=PersonName(last="DOE", first="JANE"), birth_date=date(1980, 1, 1)
        ),
        dependent=Dependent(name=PersonName(last="DOE", first="JIM"), birth_date=date(2010, 1, 1)),
        service_date=DAY,
        trace_number="TRACE9",
        trace_originator="9EXAMPLE01",
    )
    sent = SentIdentity.from_inquiry(inquiry)
    response = read("HL*4*3*23*0", "NM1*03*1*DOE*JIM", "DMG*D8*20100102*M", "EB*1**30")

    assert (sent.member_id, sent.name.first) == ("W999", "JIM")
    assert detect(response, sent=sent) == [Anomaly.DEMOGRAPHIC_MISMATCH]


GOLD = read("REF*6P*GROUP42*ACME", "REF*18*PLAN1", *ACTIVE)


def test_snapshot_keeps_payer_member_and_plan_as_returned() -> None:
    assert snapshot(GOLD) == PreviousCheck(
        payer_id="99999",
        payer_name="EXAMPLE HEALTH PLAN",
        member_id="W999",
        plan_description="GOLD PLAN",
        plan_number="PLAN1",
        group_number="GROUP42",
    )
    assert PreviousCheck.from_dict(snapshot(GOLD).as_dict()) == snapshot(GOLD)
    assert PreviousCheck.from_dict({"payer_id": "1", "unknown": 2}) == PreviousCheck(payer_id="1")


def test_same_answer_as_the_previous_check_is_no_change() -> None:
    assert detect(GOLD, previous=snapshot(GOLD)) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"payer_id": "88888"}, [Anomaly.PAYER_CHANGED]),
        ({"payer_id": "", "payer_name": "OTHER PLAN"}, [Anomaly.PAYER_CHANGED]),
        ({"member_id": "W998"}, [Anomaly.MEMBER_ID_CHANGED]),
        ({"plan_description": "SILVER PLAN"}, [Anomaly.PLAN_CHANGED]),
        ({"group_number": "GROUP7"}, [Anomaly.PLAN_CHANGED]),
        ({"plan_number": "PLAN2", "payer_id": "1"}, [Anomaly.PAYER_CHANGED, Anomaly.PLAN_CHANGED]),
        ({"plan_description": "", "group_number": "", "plan_number": ""}, []),
        ({"plan_description": "gold  plan", "payer_name": "Renamed"}, []),
    ],
    ids=[
        "payer-id",
        "payer-name",
        "member-id",
        "plan",
        "group",
        "two",
        "was-empty",
        "case-and-name",
    ],
)
def test_changes_against_the_previous_check(
    change: dict[str, str], expected: list[Anomaly]
) -> None:
    previous = PreviousCheck.from_dict({**snapshot(GOLD).as_dict(), **change})

    assert detect(GOLD, previous=previous) == expected


def test_field_missing_now_is_no_change() -> None:
    assert detect(read(*ACTIVE[:1], "EB*1**30"), previous=snapshot(GOLD)) == []


def test_anomalies_are_sorted_and_unique() -> None:
    sent = SentIdentity(
        member_id="W111", name=PersonName(last="ROE", first="JANE"), birth_date=date(1980, 1, 1)
    )
    response = read("DMG*D8*19800101*F", "REF*Q4*W000", "EB*6**30", "EB*R", "DTP*347*D8*20250310")
    previous = PreviousCheck(payer_id="1", member_id="W2")

    anomalies = detect(response, sent=sent, previous=previous)

    assert anomalies == sorted(set(anomalies))
    assert anomalies == [
        Anomaly.COVERAGE_INACTIVE,
        Anomaly.DEMOGRAPHIC_MISMATCH,
        Anomaly.MEMBER_ID_CHANGED,
        Anomaly.OTHER_PAYER_PRIMARY,
        Anomaly.PAYER_CHANGED,
    ]
