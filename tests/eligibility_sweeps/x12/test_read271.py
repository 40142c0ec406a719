"""Focused 271 behaviour beyond the shared samples."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from eligibility_sweeps.x12.read271 import (
    CoverageStatus,
    Outcome,
    parse_271,
    parse_271_all,
    response_outcome,
)
from eligibility_sweeps.x12.segments import X12Error
from tests.eligibility_sweeps.x12.factories import SUBSCRIBER_271, interchange, response_271
from tests.eligibility_sweeps.x12.samples import sample

OTHER_PAYER = (
    "EB*1**30**SILVER PLAN",
    "EB*R*IND*30*12",
    "REF*IG*POLICY123",
    "DTP*290*D8*20200101",
    "MSG*MEDICARE SECONDARY PAYER",
    "LS*2120",
    "NM1*PRP*2*OTHER HEALTH PLAN*****PI*55555",
    "N3*1 MAIN ST",
    "LE*2120",
)


def test_other_payer_is_read_from_eb_r_with_its_2120_entity() -> None:
    response = parse_271(response_271(*OTHER_PAYER))

    (other,) = response.other_payers
    assert (other.name, other.entity_code, other.id_qualifier, other.id) == (
        "OTHER HEALTH PLAN",
        "PRP",
        "PI",
        "55555",
    )
    assert other.policy_number == "POLICY123"
    assert other.coordination_date is not None
    assert other.coordination_date.start == date(2020, 1, 1)
    assert other.benefit.info == "Other or Additional Payor"
    assert (other.benefit.coverage_level, other.benefit.insurance_type) == ("IND", "12")
    assert other.benefit.messages == ("MEDICARE SECONDARY PAYER",)
    assert response.coverage_status is CoverageStatus.ACTIVE


def test_cms_other_payer_lines_read_once_the_envelope_is_5010() -> None:
    # The only public EB*R sample is 4010; EB*R and 2120C are unchanged in 5010,
    # so the same body in a 5010 envelope must give both other payers.
    text = (
        sample("oop_271_4010_cms_hets_other_payer_EB_R.x12")
        .replace("*U*00401*", "*^*00501*")
        .replace("004010X092A1", "005010X279A1")
        .replace("ST*271*333333333~", "ST*271*333333333*005010X279A1~")
    )

    response = parse_271(text)

    first, second, third = response.other_payers
    assert (first.name, first.entity_code, first.policy_number) == (
        "ORGNAME",
        "PRP",
        "POLICYNUMBER",
    )
    assert first.coordination_date is not None
    assert first.coordination_date.start == date(1990, 1, 1)
    assert (second.name, second.policy_number, second.benefit.insurance_type) == (
        "ORGNAME",
        "",
        "HM",
    )
    assert [(r.qualifier, r.value) for r in second.benefit.references] == [("18", "PLANNUMBER")]
    assert (third.benefit.service_types, third.coordination_date) == (("88",), None)
    # A real defect of this file: SE01 says 96, ST..SE holds 98 segments.
    assert response.warnings == ("SE01 of ST 333333333 says 96 segments, counted 98",)
    assert response.coverage_status is CoverageStatus.ACTIVE
    assert response.subscriber is not None
    assert response.subscriber.insured is not None
    assert response.subscriber.insured.changed


def test_identity_sent_back_with_ins_change_flags_and_references() -> None:
    response = parse_271(
        response_271(
            "REF*SY*123456789",
            "REF*6P*GROUP42*ACME CORP",
            "DMG*D8*19800101*F",
            "INS*Y*18*001*25",
            "DTP*346*D8*20250101",
            "DTP*347*D8*20251231",
            "EB*1**30",
        )
    )

    subscriber = response.subscriber
    assert subscriber is not None
    assert subscriber.name is not None
    assert (subscriber.name.last_name, subscriber.name.first_name, subscriber.member_id) == (
        "DOE",
        "JANE",
        "W999",
    )
    assert (subscriber.birth_date, subscriber.gender) == (date(1980, 1, 1), "F")
    assert subscriber.insured is not None
    assert (subscriber.insured.maintenance_type, subscriber.insured.maintenance_reason) == (
        "001",
        "25",
    )
    assert subscriber.insured.changed
    assert [(r.qualifier, r.value, r.description) for r in subscriber.references] == [
        ("SY", "123456789", ""),
        ("6P", "GROUP42", "ACME CORP"),
    ]
    assert (response.plan_begin, response.plan_end) == (date(2025, 1, 1), date(2025, 12, 31))
    assert response.trace_numbers == ("TRACE9",)
    assert [t.type_code for t in subscriber.traces] == ["2", "1"]


def test_benefit_amounts_percent_quantity_and_dates() -> None:
    response = parse_271(
        response_271(
            "EB*A*FAM*98*PR*PPO GOLD*23**0.2*VS*20*Y*Y",
            "DTP*292*RD8*20250101-20251231",
            "EB*C*IND*30***29*1500.50",
        )
    )

    coinsurance, deductible = response.benefits
    assert (coinsurance.info, coinsurance.coverage_level, coinsurance.plan_description) == (
        "Co-Insurance",
        "FAM",
        "PPO GOLD",
    )
    assert (coinsurance.percent, coinsurance.quantity_qualifier, coinsurance.quantity) == (
        Decimal("0.2"),
        "VS",
        Decimal(20),
    )
    assert (coinsurance.authorization_required, coinsurance.in_network) == ("Y", "Y")
    (period,) = coinsurance.dates
    assert (period.qualifier, period.start, period.end) == (
        "292",
        date(2025, 1, 1),
        date(2025, 12, 31),
    )
    assert (deductible.time_period, deductible.amount) == ("29", Decimal("1500.50"))


def test_crlf_line_breaks_read_like_one_line() -> None:
    crlf = parse_271(response_271("EB*1**30", separator="\r\n"))
    flat = parse_271(response_271("EB*1**30", separator=""))

    assert crlf == flat
    assert crlf.coverage_status is CoverageStatus.ACTIVE


def test_eb03_repetitions_use_the_isa11_separator() -> None:
    text = (
        response_271("EB*1**1^33^35^AL")
        .replace("*^*00501*", "*}*00501*")
        .replace("1^33^35^AL", "1}33}35}AL")
    )

    (benefit,) = parse_271(text).benefits

    assert benefit.service_types == ("1", "33", "35", "AL")


@pytest.mark.parametrize(
    ("service_date", "expected"),
    [
        (date(2024, 6, 1), CoverageStatus.ACTIVE),
        (date(2025, 3, 1), CoverageStatus.INACTIVE),
        (date(2023, 6, 1), CoverageStatus.UNKNOWN),
    ],
)
def test_coverage_status_is_on_the_date_of_service(
    service_date: date, expected: CoverageStatus
) -> None:
    text = response_271(
        "EB*1**30",
        "DTP*291*RD8*20240101-20241231",
        "EB*6**30",
        "DTP*356*D8*20250101",
    )

    assert parse_271(text, service_date=service_date).coverage_status is expected


def test_echoed_dtp_291_is_the_service_date_when_none_is_given() -> None:
    text = response_271(
        "DTP*291*D8*20250301",
        "EB*1**30",
        "DTP*347*D8*20241231",
        "EB*6**30",
    )

    response = parse_271(text)

    assert response.service_date == date(2025, 3, 1)
    assert response.coverage_status is CoverageStatus.INACTIVE


def test_a_service_carve_out_does_not_make_the_plan_inactive() -> None:
    text = response_271("EB*6**33", "EB*1**30")

    assert parse_271(text).coverage_status is CoverageStatus.ACTIVE


@pytest.mark.parametrize("code", ["72", "73", "75", "76"])
def test_subscriber_identity_rejects_are_not_found(code: str) -> None:
    response = parse_271(response_271(f"AAA*Y**{code}*C"))

    assert response.coverage_status is CoverageStatus.NOT_FOUND
    assert response_outcome(response).status is Outcome.RECEIVED


def test_dependent_not_found_is_read_at_2100d() -> None:
    text = response_271(
        "HL*4*3*23*0",
        "TRN*2*TRACE9*9EXAMPLE01",
        "NM1*03*1*DOE*JIM",
        "AAA*Y**67*C",
    ).replace("HL*3*2*22*0", "HL*3*2*22*1")

    response = parse_271(text)

    (reject,) = response.rejects
    assert (reject.loop, reject.reason, reject.follow_up) == (
        "2100D",
        "Patient Not Found",
        "Please Correct and Resubmit",
    )
    assert response.coverage_status is CoverageStatus.NOT_FOUND
    assert response.trace_numbers == ("TRACE9", "TRACE9")


def test_benefit_level_aaa_is_2110_and_does_not_change_status() -> None:
    response = parse_271(response_271("EB*1**30", "EB*I**AL", "AAA*Y**56*C"))

    (reject,) = response.rejects
    assert (reject.loop, reject.reason) == ("2110C", "Inappropriate Date")
    assert response.coverage_status is CoverageStatus.ACTIVE


def test_aaa_58_date_of_birth_is_left_unknown() -> None:
    assert parse_271(response_271("AAA*Y**58*C")).coverage_status is CoverageStatus.UNKNOWN


def test_aaa_80_at_the_payer_is_failed_and_retryable() -> None:
    text = interchange(
        [*SUBSCRIBER_271[:4], "AAA*N**80*P"],
    )

    outcome = response_outcome(parse_271(text))

    assert (outcome.status, outcome.retryable, outcome.reason) == (
        Outcome.FAILED,
        True,
        "AAA 80: No Response received - Transaction Terminated",
    )


def test_unknown_codes_are_named_not_refused() -> None:
    response = parse_271(response_271("AAA*Y**ZZ*Q", "EB*ZZ"))

    assert (response.rejects[0].reason, response.rejects[0].follow_up) == (
        "unknown code ZZ",
        "unknown code Q",
    )
    assert response.benefits[0].info == "unknown code ZZ"
    assert response.coverage_status is CoverageStatus.UNKNOWN


def test_a_4010_envelope_is_refused_even_with_a_5010_gs08() -> None:
    text = response_271("EB*1**30", version="00401")

    with pytest.raises(X12Error, match=r"is X12 4010 \(ISA12 00401\)"):
        parse_271(text)


def test_a_999_or_ta1_is_not_a_271() -> None:
    with pytest.raises(X12Error, match="got transaction set 999"):
        parse_271(sample("synthetic_999_reject_270.x12"))
    with pytest.raises(X12Error, match="got a TA1 interchange acknowledgment"):
        parse_271(sample("oop_ta1_reject_006.x12"))


def test_garbage_is_refused() -> None:
    with pytest.raises(X12Error, match="Not an X12 interchange"):
        parse_271("<html>502 Bad Gateway</html>")


def test_batch_interchange_gives_every_271() -> None:
    body = [*SUBSCRIBER_271, "EB*1**30", "SE*12*0001", *SUBSCRIBER_271, "EB*6**30"]
    text = interchange(body, se_count=12).replace("GE*1*101", "GE*2*101")

    first, second = parse_271_all(text)

    assert (first.coverage_status, second.coverage_status) == (
        CoverageStatus.ACTIVE,
        CoverageStatus.INACTIVE,
    )
    assert first.warnings == second.warnings == ()
