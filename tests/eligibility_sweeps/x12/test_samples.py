"""Every file in ``../shared/x12/samples`` with its expected reading."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from eligibility_sweeps.x12.detect import sniff
from eligibility_sweeps.x12.read271 import CoverageStatus, Outcome, parse_271, response_outcome
from eligibility_sweeps.x12.read_ack import AckStatus, parse_999, parse_ta1
from eligibility_sweeps.x12.segments import X12Error
from tests.eligibility_sweeps.x12.samples import SAMPLES, sample


@dataclass(frozen=True)
class Expected271:
    status: CoverageStatus
    rejects: tuple[tuple[str, str], ...] = ()
    outcome: Outcome = Outcome.RECEIVED
    retryable: bool = False
    reason: str | None = None
    traces: tuple[str, ...] = ()
    plan: tuple[date | None, date | None] = (None, None)
    warnings: tuple[str, ...] = ()


SAMPLES_271 = {
    "lfh_271_subscriber_active.x12": Expected271(
        CoverageStatus.ACTIVE, traces=("93175-012547",), plan=(date(2006, 1, 1), None)
    ),
    "lfh_271_dependent_active.x12": Expected271(
        CoverageStatus.ACTIVE, traces=("93175-012547",), plan=(date(2006, 1, 1), None)
    ),
    "lfh_271_aaa50_provider_ineligible.x12": Expected271(
        CoverageStatus.UNKNOWN,
        rejects=(("2100B", "50"),),
        warnings=("SE02 4323 does not match ST02 4321",),
    ),
    "stupidedi_271_aaa50.x12": Expected271(CoverageStatus.UNKNOWN, rejects=(("2100B", "50"),)),
    "oop_271_aaa_multi_level_79_80_41_42.x12": Expected271(
        CoverageStatus.UNKNOWN,
        rejects=(
            ("2000A", "80"),
            ("2000A", "79"),
            ("2100A", "79"),
            ("2100A", "80"),
            ("2100B", "41"),
            ("2100B", "41"),
            ("2100C", "42"),
        ),
        outcome=Outcome.FAILED,
        reason="AAA 79: Invalid Participant Identification",
        traces=("93175-012547",),
        plan=(date(2006, 1, 1), None),
        warnings=(
            "ISA11 repetition separator equals ISA16 component separator; "
            "repeating elements are split on it",
            "GS08 005010X279 lacks the A1 addendum; read as 005010X279A1",
        ),
    ),
    "oop_271_aaa42_unable_to_respond.x12": Expected271(
        CoverageStatus.UNKNOWN,
        rejects=(("2100C", "42"),),
        outcome=Outcome.FAILED,
        retryable=True,
        reason="AAA 42: Unable to Respond at Current Time",
    ),
    "synthetic_271_aaa75_subscriber_not_found.x12": Expected271(
        CoverageStatus.NOT_FOUND, rejects=(("2100C", "75"),), traces=("TRACE0001",)
    ),
    "synthetic_271_inactive_EB6.x12": Expected271(
        CoverageStatus.INACTIVE, traces=("TRACE0003",), plan=(date(2024, 1, 1), date(2024, 12, 31))
    ),
}

SAMPLES_999 = {
    # file: (status, acknowledged GS06, failure reason)
    "ims_999_accepted.x12": (AckStatus.ACCEPTED, "17456", None),
    "ims_999_rejected.x12": (
        AckStatus.REJECTED,
        "28",
        "999 rejected: IK3*NM*17**1 (segment NM: Unrecognized segment ID)",
    ),
    "synthetic_999_reject_270.x12": (
        AckStatus.REJECTED,
        "101",
        "999 rejected: IK3*NM1*8*2100*8 IK4*9*67*1 "
        "(segment NM1, element 9: Required Data Element Missing)",
    ),
    "oop_999_partial_accept_AK9_P.x12": (
        AckStatus.PARTIALLY_ACCEPTED,
        "17456",
        "999 rejected: IK3*CLM*22**8 IK4*2*782*1 (segment CLM, element 2: Required Data "
        "Element Missing); IK3*REF*57**3 (segment REF: Required Segment Missing)",
    ),
    "staedi_999_partial.x12": (
        AckStatus.PARTIALLY_ACCEPTED,
        "17456",
        "999 rejected: IK3*CLM*22**8 IK4*2*782*1 (segment CLM, element 2: Required Data "
        "Element Missing); IK3*REF*57**3 (segment REF: Required Segment Missing)",
    ),
}

SAMPLES_270 = ("lfh_270_subscriber.x12", "lfh_270_dependent.x12", "stupidedi_270_subscriber.x12")
SAMPLE_4010 = "oop_271_4010_cms_hets_other_payer_EB_R.x12"
SAMPLE_TA1 = "oop_ta1_reject_006.x12"


def test_every_sample_file_has_an_expectation() -> None:
    covered = {*SAMPLES_271, *SAMPLES_999, *SAMPLES_270, SAMPLE_4010, SAMPLE_TA1}
    assert {p.name for p in SAMPLES.glob("*.x12")} == covered


@pytest.mark.parametrize(("name", "expected"), SAMPLES_271.items(), ids=list(SAMPLES_271))
def test_271_sample_reads_as_expected(name: str, expected: Expected271) -> None:
    response = parse_271(sample(name))
    outcome = response_outcome(response)

    assert sniff(sample(name)) == "271"
    assert response.coverage_status is expected.status
    assert tuple((r.loop, r.reason_code) for r in response.rejects) == expected.rejects
    assert (outcome.status, outcome.retryable, outcome.reason) == (
        expected.outcome,
        expected.retryable,
        expected.reason,
    )
    assert response.trace_numbers == expected.traces
    assert (response.plan_begin, response.plan_end) == expected.plan
    assert response.warnings == expected.warnings


def test_active_subscriber_sample_has_its_benefits_and_identity() -> None:
    response = parse_271(sample("lfh_271_subscriber_active.x12"))

    assert response.interchange_control_number == "000000907"
    assert response.group_control_number == "1"
    assert response.transaction_control_number == "4321"
    assert response.bht_reference == "10001234"
    assert response.payer is not None
    assert response.payer.id == "841610001"
    assert response.provider is not None
    assert response.provider.id == "2000035"
    subscriber = response.subscriber
    assert subscriber is not None
    assert response.dependent is None
    assert (subscriber.member_id, subscriber.birth_date, subscriber.gender) == (
        "123456789",
        date(1963, 5, 19),
        "M",
    )
    plan, pcp, _, copay_in, copay_out = response.benefits
    assert (plan.info, plan.service_types, plan.plan_description) == (
        "Active Coverage",
        ("30",),
        "GOLD 123 PLAN",
    )
    assert pcp.info_code == "L"
    assert pcp.entities[0].entity_code == "P3"
    assert copay_in.service_types == ("1", "33", "35", "47", "86", "88", "98", "AL", "MH", "UC")
    assert (copay_in.insurance_type, copay_in.time_period, str(copay_in.amount)) == (
        "HM",
        "27",
        "10.00",
    )
    assert (copay_in.in_network, copay_out.in_network, str(copay_out.amount)) == ("Y", "N", "30.00")


def test_dependent_sample_reads_the_dependent_loops() -> None:
    response = parse_271(sample("lfh_271_dependent_active.x12"))

    dependent = response.dependent
    assert dependent is not None
    assert dependent.name is not None
    assert (dependent.loop, dependent.name.entity_code, dependent.name.last_name) == (
        "2100D",
        "03",
        "SMITH",
    )
    assert dependent.insured is not None
    assert dependent.insured.relationship == "19"
    assert not dependent.insured.changed
    assert response.patient is dependent
    assert {b.loop for b in response.benefits} == {"2110D"}


def test_aaa_samples_carry_reason_and_follow_up_in_words() -> None:
    not_found = parse_271(sample("synthetic_271_aaa75_subscriber_not_found.x12")).rejects[0]
    provider = parse_271(sample("stupidedi_271_aaa50.x12")).rejects[0]

    assert (not_found.valid_request, not_found.reason, not_found.follow_up) == (
        True,
        "Subscriber/Insured Not Found",
        "Please Correct and Resubmit",
    )
    assert (provider.reason, provider.follow_up) == (
        "Provider Ineligible for Inquiries",
        "Resubmission Not Allowed",
    )


def test_inactive_sample_keeps_its_message() -> None:
    response = parse_271(sample("synthetic_271_inactive_EB6.x12"))

    assert response.benefits[0].messages == ("COVERAGE TERMINATED 12/31/2024",)


def test_4010_sample_is_refused_with_a_clear_error() -> None:
    with pytest.raises(
        X12Error, match=r"is X12 4010 \(004010X092A1\); only 005010X279A1 is supported"
    ):
        parse_271(sample(SAMPLE_4010))


@pytest.mark.parametrize(("name", "expected"), SAMPLES_999.items(), ids=list(SAMPLES_999))
def test_999_sample_reads_as_expected(
    name: str, expected: tuple[AckStatus, str, str | None]
) -> None:
    status, group, reason = expected
    ack = parse_999(sample(name))

    assert sniff(sample(name)) == "999"
    assert (ack.status, ack.acknowledged_group_control_number, ack.failure_reason()) == (
        status,
        group,
        reason,
    )


def test_999_rejecting_a_270_names_the_transaction_and_codes() -> None:
    ack = parse_999(sample("synthetic_999_reject_270.x12"))

    (transaction,) = ack.transactions
    assert (ack.acknowledged_functional_id, transaction.set_id, transaction.control_number) == (
        "HS",
        "270",
        "0001",
    )
    assert transaction.error_codes == (("5", "One or More Segments in Error"),)
    (error,) = transaction.segment_errors
    assert (error.segment_id, error.position, error.loop, error.description) == (
        "NM1",
        "8",
        "2100",
        "Segment Has Data Element Errors",
    )
    assert ack.failure_reason("0001") == ack.failure_reason()


def test_partial_999_tells_accepted_from_rejected_transactions() -> None:
    ack = parse_999(sample("oop_999_partial_accept_AK9_P.x12"))

    assert [t.status for t in ack.transactions] == [
        AckStatus.ACCEPTED,
        AckStatus.REJECTED,
        AckStatus.REJECTED,
    ]
    assert ack.failure_reason("0001") is None
    assert ack.failure_reason("0003") == (
        "999 rejected: IK3*REF*57**3 (segment REF: Required Segment Missing)"
    )
    assert ack.description == "Partially Accepted, At Least One Transaction Set Was Rejected"


def test_ta1_sample_with_unusual_delimiters_is_a_006_reject() -> None:
    ta1 = parse_ta1(sample(SAMPLE_TA1))

    assert sniff(sample(SAMPLE_TA1)) == "TA1"
    assert (ta1.acknowledged_control_number, ta1.code, ta1.note_code) == ("900000001", "R", "006")
    assert ta1.status is AckStatus.REJECTED
    assert ta1.failure_reason() == "TA1 rejected: 006 invalid interchange sender id"


@pytest.mark.parametrize("name", SAMPLES_270)
def test_270_sample_is_recognised_and_refused_by_the_271_reader(name: str) -> None:
    assert sniff(sample(name)) == "270"
    with pytest.raises(
        X12Error, match="Expected a 271 eligibility response, got transaction set 270"
    ):
        parse_271(sample(name))
