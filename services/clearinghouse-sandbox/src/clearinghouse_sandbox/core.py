"""CAQH CORE connectivity rule vC2.2.0, real-time HTTP MIME: the envelope fields.

A request is multipart/form-data with the metadata fields and the X12 in ``Payload``.
The answer carries the same fields (``PayloadID`` echoed, ``SenderID``/``ReceiverID``
swapped) plus ``ErrorCode``/``ErrorMessage``. Envelope errors use the rule's codes:
``<Field>Required``, ``<Field>Illegal``, ``VersionMismatch``, ``UnAuthorized``, with
``Success`` when the envelope was fine (the X12 answer may still be a 999 or TA1).
An error envelope carries no payload and the PayloadType ``CoreEnvelopeError``, as in
CONNECT, the ONC reference implementation of CORE 2.2.0.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from rcm_kit.clock import rfc3339

RULE_VERSION = "2.2.0"
REAL_TIME = "RealTime"
REQUEST_270 = "X12_270_Request_005010X279A1"
RESPONSE_271 = "X12_271_Response_005010X279A1"
RESPONSE_999 = "X12_999_Response_005010X231A1"
RESPONSE_TA1 = "X12_TA1_Response_00501X231A1"
ERROR_PAYLOAD_TYPE = "CoreEnvelopeError"
SUCCESS = "Success"
UNAUTHORIZED = "UnAuthorized"
RECEIVER_ERROR = "Receiver"
"""``SBX-COREERR``: the fault is the receiver's (the SOAP fault code CONNECT uses)."""

REQUIRED_FIELDS = (
    "PayloadType",
    "ProcessingMode",
    "PayloadID",
    "TimeStamp",
    "SenderID",
    "ReceiverID",
    "CORERuleVersion",
    "Payload",
)


class EnvelopeError(ValueError):
    """A request envelope the sandbox refuses: ``code`` is the CORE ErrorCode."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class CoreRequest:
    """The envelope fields of one request (the payload apart)."""

    payload_type: str
    processing_mode: str
    payload_id: str
    timestamp: str
    sender_id: str
    receiver_id: str
    rule_version: str
    username: str
    password: str


def read_request(fields: Mapping[str, str]) -> tuple[CoreRequest, str]:
    """The envelope and the payload; raises ``EnvelopeError`` naming the first bad field.

    Missing fields are reported before illegal ones, in the rule's field order, so a
    client fixing one error at a time converges.
    """
    for name in REQUIRED_FIELDS:
        if not fields.get(name, "").strip():
            raise EnvelopeError(f"{name}Required", f"{name} is required but was not provided")
    request = as_sent(fields)
    _check(request)
    return request, fields["Payload"]


def as_sent(fields: Mapping[str, str]) -> CoreRequest:
    """The envelope fields as they came, missing ones empty: also what an error
    envelope echoes (PayloadID, the swapped ids) when the request was refused."""
    return CoreRequest(
        payload_type=fields.get("PayloadType", "").strip(),
        processing_mode=fields.get("ProcessingMode", "").strip(),
        payload_id=fields.get("PayloadID", "").strip(),
        timestamp=fields.get("TimeStamp", "").strip(),
        sender_id=fields.get("SenderID", "").strip(),
        receiver_id=fields.get("ReceiverID", "").strip(),
        rule_version=fields.get("CORERuleVersion", "").strip(),
        username=fields.get("UserName", ""),
        password=fields.get("Password", ""),
    )


def _check(request: CoreRequest) -> None:
    if request.rule_version != RULE_VERSION:
        raise EnvelopeError(
            "VersionMismatch", f"CORERuleVersion {RULE_VERSION} is the only one supported"
        )
    if request.payload_type != REQUEST_270:
        raise EnvelopeError("PayloadTypeIllegal", f"PayloadType must be {REQUEST_270}")
    if request.processing_mode != REAL_TIME:
        raise EnvelopeError("ProcessingModeIllegal", f"ProcessingMode must be {REAL_TIME}")
    try:
        uuid.UUID(request.payload_id)
    except ValueError:
        raise EnvelopeError("PayloadIDIllegal", "PayloadID must be a UUID") from None
    try:
        datetime.fromisoformat(request.timestamp.replace("Z", "+00:00"))
    except ValueError:
        raise EnvelopeError(
            "TimeStampIllegal", "TimeStamp must be an ISO 8601 date and time"
        ) from None


def answer_fields(
    request: CoreRequest | None,
    *,
    at: datetime,
    payload_type: str,
    payload: str | None,
    error_code: str = SUCCESS,
    error_message: str = "",
    credentials: tuple[str, str] | None = None,
) -> list[tuple[str, str]]:
    """The fields of an answer to ``request`` (``None`` when even its envelope was
    unreadable), in the rule's order. ``credentials`` adds UserName/Password, for a
    delayed answer the sandbox posts as a request of its own."""
    fields = [
        ("PayloadType", payload_type),
        ("ProcessingMode", REAL_TIME),
        ("PayloadID", request.payload_id if request else ""),
        ("TimeStamp", rfc3339(at.replace(microsecond=0))),
        ("SenderID", request.receiver_id if request else ""),
        ("ReceiverID", request.sender_id if request else ""),
        ("CORERuleVersion", RULE_VERSION),
    ]
    if credentials is not None:
        fields += [("UserName", credentials[0]), ("Password", credentials[1])]
    if payload is not None:
        fields.append(("Payload", payload))
    fields += [("ErrorCode", error_code), ("ErrorMessage", error_message)]
    return fields


def encode_multipart(fields: Sequence[tuple[str, str]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type, one text part per field."""
    boundary = f"sandbox-{uuid.uuid4().hex}"
    chunks: list[bytes] = []
    for name, value in fields:
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        )
        chunks.append(value.encode())
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"
