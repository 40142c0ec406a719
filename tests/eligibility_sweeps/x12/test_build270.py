"""The 270 builder: every document it emits passes the pyx12 validator with the
005010X279A1 maps (``../shared/x12/validate``), envelopes are exact, and unsafe text is
transliterated or refused with the element named."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from eligibility_sweeps.x12.build270 import (
    Dependent,
    Envelope,
    Inquiry,
    Payer,
    PersonName,
    Provider,
    Subscriber,
    X12BuildError,
    build_270,
    trace_originator_from_ein,
)
from eligibility_sweeps.x12.delimiters import DEFAULT, Delimiters

VALIDATE = Path(__file__).resolve().parents[3].parent / "shared" / "x12" / "validate"
NPI = "1234567893"  # the CMS example NPI, with a correct check digit


def envelope(**changes: object) -> Envelope:
    base = Envelope(
        sender_id="RCMDEMO",
        receiver_id="SANDBOX01",
        interchange_control_number=907,
        group_control_number=42,
        transaction_control_number=17,
        timestamp=datetime(2026, 11, 22, 14, 5, 33, tzinfo=UTC),
        usage_indicator="T",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def inquiry(**changes: object) -> Inquiry:
    base = Inquiry(
        payer=Payer(code="842610001", name="ABC Company"),
        provider=Provider(npi=NPI, name="Bone and Joint Clinic"),
        subscriber=Subscriber(
            member_id="11122333301",
            name=PersonName(last="Smith", first="Robert", middle="J"),
            birth_date=date(1943, 5, 19),
            gender="M",
        ),
        service_date=date(2026, 11, 23),
        trace_number="93175-012547",
        trace_originator=trace_originator_from_ein("98-7728123"),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def subscriber_named(**name: str | None) -> Subscriber:
    return Subscriber(
        member_id="W123456789",
        name=PersonName(**name),  # type: ignore[arg-type]
        birth_date=date(1980, 2, 29),
        gender="F",
    )


def segments(x12: str) -> list[list[str]]:
    return [s.strip().split("*") for s in x12.split("~") if s.strip()]


def assert_valid(x12: str, tmp_path: Path, name: str = "out.x12") -> None:
    path = tmp_path / name
    path.write_text(x12)
    result = subprocess.run(
        [sys.executable, str(VALIDATE), str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{x12}\n{result.stdout}\n{result.stderr}"


def test_subscriber_270_is_valid_and_shaped_like_the_ig_example(tmp_path: Path) -> None:
    x12 = build_270(envelope(), inquiry())
    assert_valid(x12, tmp_path)
    assert [s[0] for s in segments(x12)] == [
        "ISA", "GS", "ST", "BHT", "HL", "NM1", "HL", "NM1", "HL", "TRN", "NM1", "DMG", "DTP",
        "EQ", "SE", "GE", "IEA",
    ]  # fmt: skip
    body = x12.splitlines()
    assert "NM1*PR*2*ABC COMPANY*****PI*842610001~" in body
    assert f"NM1*1P*2*BONE AND JOINT CLINIC*****XX*{NPI}~" in body
    assert "HL*3*2*22*0~" in body
    assert "TRN*1*93175-012547*1987728123~" in body
    assert "NM1*IL*1*SMITH*ROBERT*J***MI*11122333301~" in body
    assert "DMG*D8*19430519*M~" in body
    assert "DTP*291*D8*20261123~" in body
    assert "EQ*30~" in body
    assert "BHT*0022*13*93175-012547*20261122*1405~" in body


def test_dependent_270_puts_the_patient_in_2000d(tmp_path: Path) -> None:
    child = Dependent(
        name=PersonName(last="Smith", first="Mary"), birth_date=date(2015, 10, 14), gender="F"
    )
    x12 = build_270(envelope(), inquiry(dependent=child))
    assert_valid(x12, tmp_path)
    body = x12.splitlines()
    start = body.index("HL*3*2*22*1~")
    assert body[start:-3] == [
        "HL*3*2*22*1~",
        "NM1*IL*1*SMITH*ROBERT*J***MI*11122333301~",
        "DMG*D8*19430519*M~",
        "HL*4*3*23*0~",
        "TRN*1*93175-012547*1987728123~",
        "NM1*03*1*SMITH*MARY~",
        "DMG*D8*20151014*F~",
        "DTP*291*D8*20261123~",
        "EQ*30~",
    ]


def test_individual_provider_and_no_gender_are_valid(tmp_path: Path) -> None:
    provider = Provider(npi=NPI, name=PersonName(last="Jones", first="Marcus", suffix="Jr"))
    subscriber = dataclasses.replace(inquiry().subscriber, gender=None)
    x12 = build_270(envelope(), inquiry(provider=provider, subscriber=subscriber))
    assert_valid(x12, tmp_path)
    assert f"NM1*1P*1*JONES*MARCUS***JR*XX*{NPI}~" in x12.splitlines()
    assert "DMG*D8*19430519~" in x12.splitlines()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ({"last": "O'Brien", "first": "Seán"}, "NM1*IL*1*O'BRIEN*SEAN****MI*W123456789~"),
        (
            {"last": "Smith-Jones", "first": "Anne  Marie"},
            "NM1*IL*1*SMITH-JONES*ANNE MARIE****MI*W123456789~",
        ),
        ({"last": "Müller", "first": "José"}, "NM1*IL*1*MULLER*JOSE****MI*W123456789~"),
        ({"last": "Strauß", "first": "Zoë"}, "NM1*IL*1*STRAUSS*ZOE****MI*W123456789~"),
        # decomposed input: "e" followed by a combining acute accent
        ({"last": "Bele\u0301n", "first": "Ana"}, "NM1*IL*1*BELEN*ANA****MI*W123456789~"),
        (
            {"last": "L" * 60, "first": "F" * 35},
            f"NM1*IL*1*{'L' * 60}*{'F' * 35}****MI*W123456789~",
        ),
    ],
)
def test_odd_names_are_transliterated_and_valid(
    tmp_path: Path, name: dict[str, str], expected: str
) -> None:
    x12 = build_270(envelope(), inquiry(subscriber=subscriber_named(**name)))
    assert expected in x12.splitlines()
    assert_valid(x12, tmp_path)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ({"last": "Smith*Jones"}, "NM103 (subscriber last name): contains the delimiter '*'"),
        ({"last": "Smith", "first": "A:B"}, "NM104 (subscriber first name): contains the delimiter ':'"),
        ({"last": "Smith", "middle": "^"}, "NM105 (subscriber middle name): contains the delimiter '^'"),
        ({"last": "Smith~"}, "NM103 (subscriber last name): contains the delimiter '~'"),
        ({"last": "Ørsted"}, "NM103 (subscriber last name): character 'Ø' (U+00D8)"),
        ({"last": "Wałęsa"}, "NM103 (subscriber last name): character 'ł' (U+0142)"),
        ({"last": "王"}, "NM103 (subscriber last name): character '王' (U+738B)"),
        ({"last": "Smith\tJones"}, "NM103 (subscriber last name): character '\\t' (U+0009)"),
        ({"last": "Smith", "first": "A\x00"}, "NM104 (subscriber first name): character '\\x00'"),
        ({"last": "L" * 61}, "NM103 (subscriber last name): 61 characters, the limit is 60"),
        ({"last": "Smith", "first": "F" * 36}, "NM104 (subscriber first name): 36 characters, the limit is 35"),
        ({"last": "   "}, "NM103 (subscriber last name): is empty"),
    ],
)  # fmt: skip
def test_unsafe_names_are_refused_with_the_element_named(
    name: dict[str, str], message: str
) -> None:
    with pytest.raises(X12BuildError) as caught:
        build_270(envelope(), inquiry(subscriber=subscriber_named(**name)))
    assert str(caught.value).startswith(message)


def test_refusals_never_echo_the_value() -> None:
    secret = "Verysecretname*"
    with pytest.raises(X12BuildError) as caught:
        build_270(envelope(), inquiry(subscriber=subscriber_named(last=secret)))
    assert "VERYSECRET" not in str(caught.value).upper()


def test_fullwidth_delimiter_is_refused_after_normalisation() -> None:
    fullwidth_asterisk = "\uff0a"
    with pytest.raises(X12BuildError, match=rf"delimiter '\*' \(from '{fullwidth_asterisk}'\)"):
        build_270(
            envelope(), inquiry(subscriber=subscriber_named(last="Smith" + fullwidth_asterisk))
        )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"trace_number": "ABC*1"}, "TRN02 (trace number): contains the delimiter '*'"),
        ({"trace_number": "T" * 51}, "TRN02 (trace number): length 51"),
        ({"trace_originator": "123456789"}, "TRN03 (trace originator): must be exactly 10"),
        ({"reference": "R~1"}, "BHT03 (reference): contains the delimiter '~'"),
        ({"payer": Payer(code="84261:0001", name="ABC")}, "NM109 (payer code): contains the delimiter ':'"),
        ({"payer": Payer(code="842610001", name="A*B")}, "NM103 (payer name): contains the delimiter '*'"),
        ({"provider": Provider(npi="1234567890", name="X")}, "NM109 (provider NPI): check digit"),
        ({"provider": Provider(npi="123456789", name="X")}, "NM109 (provider NPI): must be exactly 10"),
        ({"service_types": ()}, "EQ01 (service type): at least one"),
        ({"service_types": ("30", "3^")}, "EQ01 (service type): contains the delimiter '^'"),
        ({"service_types": ("30", "ab")}, "EQ01 (service type): a code is"),
        ({"service_types": ("30", "30")}, "EQ01 (service type): a code is listed twice"),
    ],
)  # fmt: skip
def test_unsafe_inquiry_values_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(X12BuildError) as caught:
        build_270(envelope(), inquiry(**changes))
    assert str(caught.value).startswith(message)


def test_member_id_is_checked_but_never_rewritten() -> None:
    subscriber = dataclasses.replace(inquiry().subscriber, member_id="abc-123")
    assert "*MI*abc-123~" in build_270(envelope(), inquiry(subscriber=subscriber))
    for bad, message in [
        ("AB*12", "contains the delimiter '*'"),
        ("ÀB12", "character 'À'"),
        (" AB12", "has leading or trailing spaces"),
    ]:
        subscriber = dataclasses.replace(inquiry().subscriber, member_id=bad)
        with pytest.raises(X12BuildError, match=r"^NM109 \(subscriber member id\): " + message):
            build_270(envelope(), inquiry(subscriber=subscriber))


def test_several_service_types_get_one_eq_loop_each(tmp_path: Path) -> None:
    codes = ("30", "1", "33", "35", "47", "88", "AL", "MH", "UC")
    x12 = build_270(envelope(), inquiry(service_types=codes))
    assert_valid(x12, tmp_path)
    eqs = [line for line in x12.splitlines() if line.startswith("EQ*")]
    assert eqs == [f"EQ*{code}~" for code in codes]


def test_several_service_types_for_a_dependent_are_valid(tmp_path: Path) -> None:
    child = Dependent(name=PersonName(last="Smith", first="Mary"), birth_date=date(2015, 10, 14))
    x12 = build_270(envelope(), inquiry(dependent=child, service_types=("30", "35", "AL")))
    assert_valid(x12, tmp_path)


def test_envelope_is_exact(tmp_path: Path) -> None:
    x12 = build_270(
        envelope(sender_id="12345", sender_qualifier="30", usage_indicator="P"), inquiry()
    )
    lines = x12.splitlines()
    isa = lines[0]
    assert len(isa) == 106
    assert isa == (
        "ISA*00*          *00*          *30*12345          *ZZ*SANDBOX01      "
        "*261122*1405*^*00501*000000907*0*P*:~"
    )
    fields = segments(x12)
    gs, st, se, ge, iea = fields[1], fields[2], fields[-3], fields[-2], fields[-1]
    assert gs == ["GS", "HS", "12345", "SANDBOX01", "20261122", "1405", "42", "X", "005010X279A1"]
    assert st == ["ST", "270", "0017", "005010X279A1"]
    assert se == ["SE", str(len(fields) - 4), "0017"]
    assert ge == ["GE", "1", "42"]
    assert iea == ["IEA", "1", "000000907"]
    assert_valid(x12, tmp_path)


def test_control_numbers_at_their_limits(tmp_path: Path) -> None:
    x12 = build_270(
        envelope(
            interchange_control_number=999_999_999,
            group_control_number=999_999_999,
            transaction_control_number=123_456_789,
        ),
        inquiry(),
    )
    fields = segments(x12)
    assert fields[0][13] == "999999999"
    assert fields[2][2] == fields[-3][2] == "123456789"
    assert fields[-2] == ["GE", "1", "999999999"]
    assert_valid(x12, tmp_path)
    for changes, label in [
        ({"interchange_control_number": 0}, "ISA13"),
        ({"interchange_control_number": 1_000_000_000}, "ISA13"),
        ({"group_control_number": -1}, "GS06"),
        ({"transaction_control_number": 10**9}, "ST02"),
    ]:
        with pytest.raises(X12BuildError, match=f"^{label} "):
            build_270(envelope(**changes), inquiry())


def test_envelope_values_are_refused_when_they_do_not_fit() -> None:
    cases: list[tuple[dict[str, object], str]] = [
        ({"sender_id": "S" * 16}, "ISA06 (sender id): length 16"),
        ({"receiver_id": "R*1"}, "ISA08 (receiver id): contains the delimiter '*'"),
        ({"sender_qualifier": "XX"}, "ISA05 (sender qualifier): must be one of"),
        ({"timestamp": datetime(2026, 11, 22, 14, 5)}, "timestamp: must be timezone-aware"),
        ({"application_sender_code": "S"}, "GS02 (application sender code): length 1"),
    ]
    for changes, message in cases:
        with pytest.raises(X12BuildError) as caught:
            build_270(envelope(**changes), inquiry())
        assert str(caught.value).startswith(message)


def test_timestamp_is_written_in_utc() -> None:
    new_york = timezone(timedelta(hours=-5))
    at = datetime(2026, 12, 31, 21, 30, tzinfo=new_york)  # 02:30 UTC on 1 January
    fields = segments(build_270(envelope(timestamp=at), inquiry()))
    assert fields[0][9:11] == ["270101", "0230"]
    assert fields[1][4:6] == ["20270101", "0230"]
    assert fields[3][4:6] == ["20270101", "0230"]


def test_without_newlines_is_one_line_and_valid(tmp_path: Path) -> None:
    x12 = build_270(envelope(), inquiry(), newline=False)
    assert "\n" not in x12
    assert x12.replace("~", "~\n") == build_270(envelope(), inquiry())
    assert_valid(x12, tmp_path)


def test_other_delimiters_are_honoured_and_checked(tmp_path: Path) -> None:
    d = Delimiters(element="|", component=">", repetition="!", segment="\\")
    x12 = build_270(envelope(), inquiry(service_types=("30", "1")), delimiters=d)
    assert x12.startswith("ISA|00|")
    assert x12.splitlines()[-5:-2] == ["EQ|30\\", "EQ|1\\", "SE|14|0017\\"]
    assert_valid(x12, tmp_path)
    # with '|' as the element separator, a '|' in a name is a delimiter; '*' is just text
    with pytest.raises(X12BuildError, match=r"contains the delimiter '\|'"):
        build_270(envelope(), inquiry(subscriber=subscriber_named(last="A|B")), delimiters=d)
    with pytest.raises(X12BuildError, match="distinct"):
        build_270(envelope(), inquiry(), delimiters=Delimiters(component="*"))


def test_output_is_deterministic() -> None:
    assert build_270(envelope(), inquiry()) == build_270(envelope(), inquiry())
    assert build_270(envelope(), inquiry(), delimiters=DEFAULT) == build_270(envelope(), inquiry())


def test_trace_originator_from_ein() -> None:
    assert trace_originator_from_ein("12-3456789") == "1123456789"
    with pytest.raises(X12BuildError, match="exactly 9 digits"):
        trace_originator_from_ein("12345678")
