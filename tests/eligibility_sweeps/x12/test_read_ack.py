"""Focused 999 and TA1 behaviour beyond the shared samples."""

from __future__ import annotations

import pytest

from eligibility_sweeps.x12.detect import sniff
from eligibility_sweeps.x12.read_ack import (
    Acknowledgment999,
    AckStatus,
    TA1Acknowledgment,
    parse_999,
    parse_acknowledgment,
    parse_ta1,
)
from eligibility_sweeps.x12.segments import X12Error
from tests.eligibility_sweeps.x12.factories import interchange


def _999(*body: str) -> str:
    return interchange(
        ["ST*999*0001*005010X231A1", "AK1*HS*101*005010X279A1", *body], gs08="005010X231A1"
    ).replace("GS*HB*", "GS*FA*")


def test_ik4_bad_value_never_reaches_the_reason() -> None:
    ack = parse_999(
        _999(
            "AK2*270*0001", "IK3*NM1*8*2100*8", "IK4*3:1*1035*6*SMITH~JR", "IK5*R*5", "AK9*R*1*1*0"
        )
    )

    (error,) = ack.transactions[0].segment_errors
    assert error.elements[0].position == "3:1"
    reason = ack.failure_reason()
    assert reason == (
        "999 rejected: IK3*NM1*8*2100*8 IK4*3:1*1035*6 "
        "(segment NM1, element 3, component 1: Invalid Character In Data Element)"
    )
    assert "SMITH" not in reason


def test_rejected_without_ik3_explains_with_ik5_codes() -> None:
    ack = parse_999(_999("AK2*270*0001", "IK5*R*3*4", "AK9*R*1*1*0"))

    assert ack.failure_reason() == (
        "999 rejected: IK5*R*3*4 (transaction 270 0001: Transaction Set Control Number in "
        "Header and Trailer Do Not Match; Number of Included Segments Does Not Match Actual Count)"
    )


def test_group_level_reject_explains_with_ak9_codes() -> None:
    ack = parse_999(_999("AK9*R*1*0*0*2"))

    assert ack.transactions == ()
    assert ack.failure_reason() == (
        "999 rejected: AK9*R*1*0*0*2 (functional group: Functional Group Version Not Supported)"
    )


def test_accepted_with_errors_is_accepted() -> None:
    ack = parse_999(_999("AK2*270*0001", "IK5*E", "AK9*E*1*1*1"))

    assert ack.status is AckStatus.ACCEPTED
    assert ack.failure_reason() is None
    assert ack.for_transaction("0001") is not None


def test_ta1_accepted_is_not_a_failure() -> None:
    isa = interchange([]).split("\n")[0]
    ta1 = parse_ta1(isa + "\nTA1*000000777*250301*1200*A*000~\nIEA*0*000000101~")

    assert (ta1.acknowledged_control_number, ta1.status, ta1.note) == (
        "000000777",
        AckStatus.ACCEPTED,
        "No error",
    )
    assert ta1.failure_reason() is None


def test_parse_acknowledgment_picks_the_right_reader() -> None:
    isa = interchange([]).split("\n")[0]

    assert isinstance(parse_acknowledgment(_999("AK9*A*0*0*0")), Acknowledgment999)
    assert isinstance(
        parse_acknowledgment(isa + "TA1*1*250301*1200*R*022~IEA*0*000000101~"), TA1Acknowledgment
    )


def test_a_271_is_not_an_acknowledgment() -> None:
    text = interchange(["ST*271*0001*005010X279A1"])

    with pytest.raises(X12Error, match="Expected a 999 acknowledgment, got transaction set 271"):
        parse_999(text)
    with pytest.raises(X12Error, match="Expected a TA1 acknowledgment"):
        parse_ta1(text)


@pytest.mark.parametrize("text", ["", "garbage", "ISA*too short~"])
def test_sniff_calls_garbage_unknown(text: str) -> None:
    assert sniff(text) == "unknown"
