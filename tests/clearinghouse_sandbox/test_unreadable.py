"""What the sandbox does with input that is not a clean 270: the TA1, 999 or 400 a
clearinghouse's front door would answer, and tolerance of real-world formatting."""

from __future__ import annotations

from pathlib import Path

import pytest

from eligibility_sweeps.x12.delimiters import Delimiters
from eligibility_sweeps.x12.read271 import CoverageStatus, parse_271
from eligibility_sweeps.x12.read_ack import AckStatus, parse_999, parse_ta1
from tests.clearinghouse_sandbox.factories import make_270
from tests.sandbox_support import SandboxClient

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "x12" / "samples"
SAMPLE_270S = ["lfh_270_subscriber.x12", "lfh_270_dependent.x12", "stupidedi_270_subscriber.x12"]


def with_segment(x12: str, old: str, new: str) -> str:
    assert old in x12
    return x12.replace(old, new, 1)


async def test_a_body_without_isa_is_a_400(sandbox: SandboxClient) -> None:
    response = await sandbox.send_x12("hello, clearinghouse")

    assert response.status_code == 400
    [record] = await sandbox.requests()
    assert (record["rule"], record["answer"]) == ("UNREADABLE", "HTTP 400")


async def test_a_4010_interchange_gets_a_ta1_quoting_its_isa13(sandbox: SandboxClient) -> None:
    sent = make_270()
    response = await sandbox.send_x12(with_segment(sent.x12, "*00501*", "*00401*"))

    ta1 = parse_ta1(response.text)
    assert (ta1.acknowledged_control_number, ta1.note_code, ta1.status) == (
        sent.isa13,
        "017",
        AckStatus.REJECTED,
    )


async def test_a_mismatched_iea_gets_a_ta1(sandbox: SandboxClient) -> None:
    sent = make_270()
    response = await sandbox.send_x12(
        with_segment(sent.x12, f"IEA*1*{sent.isa13}", "IEA*1*000000999")
    )

    assert parse_ta1(response.text).note_code == "001"


@pytest.mark.parametrize(
    ("old", "new", "ik5"),
    [("SE*", "SE*9", "4"), ("ST*270*", "ST*276*", "1")],
    ids=["se-count", "not-a-270"],
)
async def test_a_bad_transaction_set_gets_a_999(
    sandbox: SandboxClient, old: str, new: str, ik5: str
) -> None:
    sent = make_270()
    response = await sandbox.send_x12(with_segment(sent.x12, old, new))

    ack = parse_999(response.text)
    [transaction] = ack.transactions
    assert transaction.status is AckStatus.REJECTED
    assert transaction.control_number == sent.st02
    assert [code for code, _ in transaction.error_codes] == [ik5]
    assert ack.acknowledged_group_control_number == sent.gs06


async def test_a_270_without_a_subscriber_gets_a_999_naming_the_segment(
    sandbox: SandboxClient,
) -> None:
    sent = make_270()
    segments = sent.x12.split("~\n")
    body = [s for s in segments if not s.startswith("NM1*IL")]
    body = [
        f"SE*{int(s.split('*')[1]) - 1}*{sent.st02}" if s.startswith("SE*") else s for s in body
    ]

    response = await sandbox.send_x12("~\n".join(body))

    [transaction] = parse_999(response.text).transactions
    [segment] = transaction.segment_errors
    assert (segment.segment_id, segment.loop, segment.code) == ("NM1", "2100", "3")


@pytest.mark.parametrize("name", SAMPLE_270S)
async def test_public_sample_270s_are_answered(sandbox: SandboxClient, name: str) -> None:
    text = (SAMPLES / name).read_text()

    response = await sandbox.send_x12(text)

    answer = parse_271(response.text)
    assert answer.warnings == ()
    assert answer.trace_numbers == ("93175-012547",)
    assert answer.coverage_status is CoverageStatus.ACTIVE


async def test_answers_in_the_delimiters_of_the_270(sandbox: SandboxClient) -> None:
    unusual = Delimiters(element="|", component=">", repetition="!", segment="'")
    sent = make_270(delimiters=unusual, newline=False, service_types=("30", "98"))

    response = await sandbox.send_x12(sent.x12)

    assert response.text.startswith("ISA|00|")
    assert "\n" not in response.text
    assert "'IEA|1|" in response.text
    answer = parse_271(response.text)
    assert answer.warnings == ()
    assert answer.trace_numbers == (sent.inquiry.trace_number,)
    active = next(b for b in answer.benefits if b.info_code == "1")
    assert active.service_types == ("30", "98")


async def test_indented_lines_are_tolerated(sandbox: SandboxClient) -> None:
    sent = make_270()
    indented = "\ufeff" + sent.x12.replace("~\n", "~\r\n    ")

    response = await sandbox.send_x12(indented)

    assert parse_271(response.text).trace_numbers == (sent.inquiry.trace_number,)
