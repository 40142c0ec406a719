"""CAQH CORE vC2.2.0 envelope: what is echoed, swapped and refused."""

from __future__ import annotations

import pytest

from eligibility_sweeps.x12.read271 import CoverageStatus, parse_271
from tests.clearinghouse_sandbox.factories import make_270
from tests.sandbox_support import SandboxClient, core_request_fields, parse_core


async def test_answer_echoes_payload_id_and_swaps_sender_and_receiver(
    sandbox: SandboxClient,
) -> None:
    request = core_request_fields(make_270().x12)
    response = await sandbox.http.post("/core", files=[(k, (None, v)) for k, v in request.items()])

    fields = parse_core(response)
    assert response.status_code == 200
    assert fields["PayloadID"] == request["PayloadID"]
    assert (fields["SenderID"], fields["ReceiverID"]) == (
        request["ReceiverID"],
        request["SenderID"],
    )
    assert fields["ProcessingMode"] == "RealTime"
    assert fields["CORERuleVersion"] == "2.2.0"
    assert fields["TimeStamp"].endswith("Z")
    assert (fields["ErrorCode"], fields["ErrorMessage"]) == ("Success", "")
    assert parse_271(fields["Payload"]).coverage_status is CoverageStatus.ACTIVE


async def test_payload_sent_as_a_file_part_is_read(sandbox: SandboxClient) -> None:
    request = core_request_fields(make_270().x12)
    payload = request.pop("Payload")
    files = [(k, (None, v)) for k, v in request.items()]
    files.append(("Payload", ("270.x12", payload.encode(), "application/edi-x12")))  # type: ignore[arg-type]

    response = await sandbox.http.post("/core", files=files)

    assert parse_core(response)["PayloadType"] == "X12_271_Response_005010X279A1"


@pytest.mark.parametrize(
    ("changed", "omitted", "code"),
    [
        ({}, ("PayloadID",), "PayloadIDRequired"),
        ({}, ("PayloadType",), "PayloadTypeRequired"),
        ({}, ("Payload",), "PayloadRequired"),
        ({}, ("SenderID",), "SenderIDRequired"),
        ({"TimeStamp": ""}, (), "TimeStampRequired"),
        ({"CORERuleVersion": "2.1.0"}, (), "VersionMismatch"),
        ({"PayloadType": "X12_276_Request_005010X212"}, (), "PayloadTypeIllegal"),
        ({"ProcessingMode": "Batch"}, (), "ProcessingModeIllegal"),
        ({"PayloadID": "not-a-uuid"}, (), "PayloadIDIllegal"),
        ({"TimeStamp": "yesterday"}, (), "TimeStampIllegal"),
        ({"Payload": "hello"}, (), "PayloadIllegal"),
    ],
)
async def test_envelope_errors_answer_an_error_envelope(
    sandbox: SandboxClient, changed: dict[str, str], omitted: tuple[str, ...], code: str
) -> None:
    request = {**core_request_fields(make_270().x12), **changed}
    for name in omitted:
        del request[name]

    response = await sandbox.http.post("/core", files=[(k, (None, v)) for k, v in request.items()])

    fields = parse_core(response)
    assert response.status_code == 400
    assert fields["ErrorCode"] == code
    assert fields["ErrorMessage"]
    assert fields["PayloadType"] == "CoreEnvelopeError"
    assert "Payload" not in fields
    assert fields["PayloadID"] == request.get("PayloadID", "")
    assert fields["ReceiverID"] == request.get("SenderID", "")
    [record] = await sandbox.requests()
    assert record["answer"] == code


async def test_a_body_that_is_not_a_form_is_a_missing_field(sandbox: SandboxClient) -> None:
    response = await sandbox.http.post(
        "/core", content=b"ISA*...", headers={"Content-Type": "text/plain"}
    )

    assert response.status_code == 400
    assert parse_core(response)["ErrorCode"] == "PayloadTypeRequired"
