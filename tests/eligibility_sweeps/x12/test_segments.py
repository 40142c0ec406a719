"""The tokenizer: delimiters from the ISA, layout tolerated, envelope defects reported."""

from __future__ import annotations

import pytest

from eligibility_sweeps.x12.delimiters import Delimiters
from eligibility_sweeps.x12.segments import X12Error, parse_interchange
from tests.eligibility_sweeps.x12.factories import SUBSCRIBER_271, interchange


def test_envelope_facts_come_from_isa_gs_and_st() -> None:
    result = parse_interchange(interchange(SUBSCRIBER_271))

    assert (result.control_number, result.sender_id, result.receiver_id, result.usage) == (
        "000000101",
        "CLEARINGHOUSE",
        "PROVIDERSUB",
        "T",
    )
    (group,) = result.groups
    (transaction,) = group.transactions
    assert (group.control_number, group.version) == ("101", "005010X279A1")
    assert (transaction.set_id, transaction.control_number, transaction.implementation) == (
        "271",
        "0001",
        "005010X279A1",
    )
    assert result.warnings == ()


@pytest.mark.parametrize("separator", ["", "\n", "\r\n", "\r\n    ", "\n\t\t"])
def test_layout_between_segments_is_ignored(separator: str) -> None:
    result = parse_interchange(interchange(SUBSCRIBER_271, separator=separator))

    assert [s.id for s in result.groups[0].transactions[0].segments][:3] == ["BHT", "HL", "NM1"]
    assert result.warnings == ()


def test_bom_and_whitespace_before_the_isa_are_skipped() -> None:
    result = parse_interchange("\ufeff\r\n  " + interchange(SUBSCRIBER_271))

    assert result.control_number == "000000101"


def test_delimiters_are_taken_from_the_isa() -> None:
    odd = Delimiters(element="|", component="<", repetition="}", segment="'")
    result = parse_interchange(interchange([*SUBSCRIBER_271, "EB|B||1}33}AL<X"], delimiters=odd))

    assert result.delimiters == odd
    eb = result.find("EB")[0]
    assert eb.repeats(3) == ("1", "33", "AL<X")
    assert eb.get(3).split("}")[2] == "AL<X"


def test_repetition_and_components_are_split_on_request() -> None:
    result = parse_interchange(interchange([*SUBSCRIBER_271, "EB*B**1^^33*HM", "III*ZZ*21:B"]))

    eb, iii = result.find("EB")[0], result.find("III")[0]
    assert eb.repeats(3) == ("1", "33")
    assert eb.get(99) == ""
    assert iii.components(2) == ("21", "B")


def test_wrong_se_count_and_control_number_are_warnings() -> None:
    text = interchange(SUBSCRIBER_271, se_count=99).replace("SE*99*0001", "SE*99*0002")

    result = parse_interchange(text)

    assert result.warnings == (
        "SE01 of ST 0001 says 99 segments, counted 11",
        "SE02 0002 does not match ST02 0001",
    )
    assert result.groups[0].transactions[0].segments[-1].id == "NM1"


def test_missing_trailers_are_warnings() -> None:
    text = interchange(SUBSCRIBER_271).split("~\nSE*")[0]

    result = parse_interchange(text)

    assert len(result.groups[0].transactions) == 1
    assert "ST 0001 has no SE trailer" in result.warnings
    assert "The interchange has no IEA trailer at its end" in result.warnings


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "does not start with an ISA"),
        ("hello world", "does not start with an ISA"),
        ('{"member": 1}', "does not start with an ISA"),
        ("ISA*00*short~", "the ISA segment is 13 characters"),
        ("ISA*00*" + "x" * 120, "not 106 fixed-width"),
        ("ISAA00A" + "x" * 120, "element separator is not a delimiter"),
    ],
)
def test_garbage_is_an_x12_error(text: str, message: str) -> None:
    with pytest.raises(X12Error, match=message):
        parse_interchange(text)


def test_pre_5010_isa11_is_not_a_repetition_separator() -> None:
    text = interchange([*SUBSCRIBER_271, "EB*B**1^33"], version="00401").replace(
        "*^*00401", "*U*00401"
    )

    eb = parse_interchange(text).find("EB")[0]

    assert eb.repetition is None
    assert eb.repeats(3) == ("1^33",)
