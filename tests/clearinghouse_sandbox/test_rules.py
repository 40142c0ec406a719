"""Every rule over both transports, read back with the product's own readers."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest

from eligibility_sweeps.x12.read271 import CoverageStatus
from eligibility_sweeps.x12.read_ack import AckStatus, parse_999, parse_ta1
from tests.clearinghouse_sandbox.factories import (
    RECEIVER_ID,
    SENDER_ID,
    SERVICE_DATE,
    TRACE_ORIGINATOR,
    TRANSPORTS,
    ask_271,
    make_270,
    payload_of,
    send,
)
from tests.sandbox_support import SandboxClient, parse_core

pytestmark = pytest.mark.parametrize("transport", TRANSPORTS)
PATIENT = pytest.mark.parametrize("dependent", [False, True], ids=["subscriber", "dependent"])


def split(text: str) -> list[str]:
    return [s.strip() for s in text.split("~") if s.strip()]


def assert_counts(text: str) -> None:
    """SE01, GE01 and IEA01 agree with what the interchange holds."""
    segments = split(text)
    st = next(i for i, s in enumerate(segments) if s.startswith("ST*"))
    se = next(i for i, s in enumerate(segments) if s.startswith("SE*"))
    assert segments[se].split("*")[1] == str(se - st + 1)
    assert segments[se].split("*")[2] == segments[st].split("*")[2]
    assert re.fullmatch(r"GE\*1\*\d+", segments[-2])
    assert segments[-1].split("*")[1] == "1"
    assert segments[-1].split("*")[2] == segments[0].split("*")[13]


@PATIENT
async def test_a_271_echoes_the_inquiry_in_its_own_envelope(
    sandbox: SandboxClient, transport: str, dependent: bool
) -> None:
    sent = make_270(dependent=dependent)
    response, text = await ask_271(sandbox, transport, sent)

    assert response.warnings == ()
    assert_counts(text)
    assert (response.sender_id, response.receiver_id) == (RECEIVER_ID, SENDER_ID)
    assert response.version == "005010X279A1"
    assert any(s.startswith("BHT*0022*11*") for s in split(text))
    assert response.trace_numbers == (sent.inquiry.trace_number,)
    assert response.patient is not None
    echoed = next(t for t in response.patient.traces if t.type_code == "2")
    assert echoed.originator_id == TRACE_ORIGINATOR
    assert response.payer is not None
    assert response.payer.id == "SBXPAYER"
    assert response.provider is not None
    assert response.provider.id == "1234567893"
    assert response.subscriber is not None
    assert response.subscriber.member_id == "W123456789"
    assert response.subscriber.name is not None
    assert response.subscriber.name.last_name == "DOE"
    assert (response.dependent is not None) is dependent
    assert response.service_date == SERVICE_DATE
    assert response.coverage_status is CoverageStatus.ACTIVE


@PATIENT
async def test_active_reports_plan_copay_and_deductible(
    sandbox: SandboxClient, transport: str, dependent: bool
) -> None:
    response, _ = await ask_271(sandbox, transport, make_270("SBX-ACTIVE", dependent=dependent))

    assert response.coverage_status is CoverageStatus.ACTIVE
    active = next(b for b in response.benefits if b.info_code == "1")
    assert active.loop == ("2110D" if dependent else "2110C")
    assert (active.coverage_level, active.service_types) == ("IND", ("30",))
    assert active.plan_description == "SANDBOX GOLD PPO"
    amounts = {b.info_code: b.amount for b in response.benefits}
    assert amounts["B"] == Decimal("25")
    assert amounts["C"] == Decimal("1500")
    assert response.patient is not None
    references = {r.qualifier for r in response.patient.references}
    assert {"18", "6P"} <= references
    assert response.plan_begin == date(SERVICE_DATE.year, 1, 1)
    assert response.plan_end is None


async def test_active_lists_every_service_type_asked_for(
    sandbox: SandboxClient, transport: str
) -> None:
    response, _ = await ask_271(sandbox, transport, make_270(service_types=("30", "98", "88")))

    active = next(b for b in response.benefits if b.info_code == "1")
    assert active.service_types == ("30", "98", "88")


@PATIENT
async def test_inactive_ends_the_plan_before_the_service_date(
    sandbox: SandboxClient, transport: str, dependent: bool
) -> None:
    response, _ = await ask_271(sandbox, transport, make_270("SBX-INACTIVE", dependent=dependent))

    assert response.coverage_status is CoverageStatus.INACTIVE
    assert [b.info_code for b in response.benefits] == ["6"]
    assert response.plan_end is not None
    assert response.plan_end < SERVICE_DATE


@pytest.mark.parametrize(
    ("member_id", "dependent", "loop", "code"),
    [
        ("SBX-NOTFOUND", False, "2100C", "75"),
        ("SBX-NOTFOUND", True, "2100D", "67"),
        ("SBX-BADID", False, "2100C", "72"),
        ("SBX-BADID", True, "2100C", "72"),
    ],
)
async def test_unknown_members_get_a_person_level_aaa(
    sandbox: SandboxClient, transport: str, member_id: str, dependent: bool, loop: str, code: str
) -> None:
    response, _ = await ask_271(sandbox, transport, make_270(member_id, dependent=dependent))

    assert response.coverage_status is CoverageStatus.NOT_FOUND
    assert [
        (r.loop, r.reason_code, r.valid_request, r.follow_up_code) for r in response.rejects
    ] == [(loop, code, False, "C")]
    assert response.benefits == ()


async def test_rule_ids_match_case_insensitively(sandbox: SandboxClient, transport: str) -> None:
    response, _ = await ask_271(sandbox, transport, make_270("sbx-notfound"))

    assert response.coverage_status is CoverageStatus.NOT_FOUND


@PATIENT
async def test_other_payer_is_named_primary(
    sandbox: SandboxClient, transport: str, dependent: bool
) -> None:
    response, _ = await ask_271(sandbox, transport, make_270("SBX-OTHERPAYER", dependent=dependent))

    assert response.coverage_status is CoverageStatus.ACTIVE
    [other] = response.other_payers
    assert (other.entity_code, other.name, other.id_qualifier, other.id) == (
        "PRP",
        "OTHER HEALTH PLAN",
        "PI",
        "OTHER01",
    )
    assert other.policy_number
    assert other.benefit.loop == ("2110D" if dependent else "2110C")


@PATIENT
async def test_plan_ends_ten_days_after_the_service_date(
    sandbox: SandboxClient, transport: str, dependent: bool
) -> None:
    response, _ = await ask_271(sandbox, transport, make_270("SBX-PLANENDS", dependent=dependent))

    assert response.coverage_status is CoverageStatus.ACTIVE
    assert response.plan_end == SERVICE_DATE + timedelta(days=10)


@PATIENT
async def test_demographics_come_back_different(
    sandbox: SandboxClient, transport: str, dependent: bool
) -> None:
    sent = make_270("SBX-DEMOG", dependent=dependent)
    response, _ = await ask_271(sandbox, transport, sent)

    patient = response.patient
    asked = sent.inquiry.dependent or sent.inquiry.subscriber
    assert patient is not None
    assert patient.name is not None
    assert response.coverage_status is CoverageStatus.ACTIVE
    assert patient.name.first_name not in ("", (asked.name.first or "").upper())
    assert patient.name.last_name == asked.name.last.upper()
    assert patient.birth_date is not None
    assert patient.birth_date != asked.birth_date
    assert patient.insured is not None
    assert patient.insured.changed


@PATIENT
async def test_new_id_returns_another_member_id(
    sandbox: SandboxClient, transport: str, dependent: bool
) -> None:
    response, _ = await ask_271(sandbox, transport, make_270("SBX-NEWID", dependent=dependent))

    assert response.coverage_status is CoverageStatus.ACTIVE
    assert response.subscriber is not None
    assert response.subscriber.member_id == "SBX-NEWID-NEW"


@pytest.mark.parametrize(
    ("member_id", "loop", "aaa"),
    [("SBX-AAA42", "2100A", ("42", True, "R")), ("SBX-AAA79", "2100B", ("79", False, "C"))],
)
async def test_payer_and_provider_level_rejections(
    sandbox: SandboxClient, transport: str, member_id: str, loop: str, aaa: tuple[str, bool, str]
) -> None:
    sent = make_270(member_id)
    response, _ = await ask_271(sandbox, transport, sent)

    assert [
        (r.loop, (r.reason_code, r.valid_request, r.follow_up_code)) for r in response.rejects
    ] == [(loop, aaa)]
    assert response.benefits == ()
    assert response.coverage_status is CoverageStatus.UNKNOWN
    assert response.trace_numbers == (sent.inquiry.trace_number,)


@PATIENT
async def test_999_rejects_our_transaction_set_by_its_control_numbers(
    sandbox: SandboxClient, transport: str, dependent: bool
) -> None:
    sent = make_270("SBX-999", dependent=dependent)
    response = await send(sandbox, transport, sent.x12)
    ack = parse_999(payload_of(response, transport, "999"))

    assert ack.status is AckStatus.REJECTED
    assert (ack.acknowledged_functional_id, ack.acknowledged_group_control_number) == (
        "HS",
        sent.gs06,
    )
    [transaction] = ack.transactions
    assert (transaction.set_id, transaction.control_number) == ("270", sent.st02)
    assert transaction.status is AckStatus.REJECTED
    [segment] = transaction.segment_errors
    assert (segment.segment_id, segment.position, segment.loop, segment.code) == (
        "NM1",
        str(sent.position("NM1*IL")),
        "2100",
        "8",
    )
    assert [(e.position, e.code) for e in segment.elements] == [("9", "7")]
    assert ack.failure_reason(sent.st02) is not None


async def test_ta1_rejects_our_interchange(sandbox: SandboxClient, transport: str) -> None:
    sent = make_270("SBX-TA1")
    response = await send(sandbox, transport, sent.x12)
    ta1 = parse_ta1(payload_of(response, transport, "TA1"))

    assert ta1.status is AckStatus.REJECTED
    assert ta1.acknowledged_control_number == sent.isa13
    assert (ta1.interchange_date, ta1.interchange_time) == ("260301", "1200")
    assert ta1.note_code == "006"


@pytest.mark.parametrize(
    ("member_id", "status", "text"),
    [
        ("SBX-401", 401, "Unauthorized: sandbox rejects these credentials"),
        ("SBX-503", 503, "Service temporarily unavailable"),
    ],
)
async def test_http_error_rules(
    sandbox: SandboxClient, transport: str, member_id: str, status: int, text: str
) -> None:
    response = await send(sandbox, transport, make_270(member_id).x12)

    assert response.status_code == status
    assert response.text == text


async def test_core_error_rule(sandbox: SandboxClient, transport: str) -> None:
    response = await send(sandbox, transport, make_270("SBX-COREERR").x12)

    if transport == "x12-http":
        assert response.status_code == 500
        assert response.text
        return
    assert response.status_code == 200
    fields = parse_core(response)
    assert fields["ErrorCode"] not in ("", "Success")
    assert fields["ErrorMessage"]
    assert "Payload" not in fields


async def test_records_every_rule_with_its_answer(sandbox: SandboxClient, transport: str) -> None:
    for member_id in ("SBX-ACTIVE", "SBX-401", "SBX-503", "SBX-999"):
        await send(sandbox, transport, make_270(member_id).x12)

    records = await sandbox.requests()
    assert [(r["rule"], r["answer"], r["transport"]) for r in records] == [
        ("SBX-ACTIVE", "271", transport),
        ("SBX-401", "HTTP 401", transport),
        ("SBX-503", "HTTP 503", transport),
        ("SBX-999", "999", transport),
    ]
