"""270s for the sandbox tests, built by the product's own builder (tests only), and
the product's readers for what comes back."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime

import httpx

from eligibility_sweeps.x12.build270 import (
    Dependent,
    Envelope,
    Inquiry,
    Payer,
    PersonName,
    Provider,
    Subscriber,
    build_270,
)
from eligibility_sweeps.x12.delimiters import DEFAULT, Delimiters
from eligibility_sweeps.x12.read271 import EligibilityResponse, parse_271
from tests.sandbox_support import SandboxClient, parse_core

SERVICE_DATE = date(2026, 3, 2)
SENDER_ID = "PROVIDERSUB"
RECEIVER_ID = "SANDBOXCH"
TRACE_ORIGINATOR = "1123456789"
TRANSPORTS = ("x12-http", "core-mime")
PAYLOAD_TYPES = {
    "271": "X12_271_Response_005010X279A1",
    "999": "X12_999_Response_005010X231A1",
    "TA1": "X12_TA1_Response_00501X231A1",
}

_controls = itertools.count(101)


@dataclass(frozen=True)
class Sent:
    """A 270 as sent, with what it was built from."""

    x12: str
    inquiry: Inquiry
    envelope: Envelope

    @property
    def isa13(self) -> str:
        return f"{self.envelope.interchange_control_number:09d}"

    @property
    def gs06(self) -> str:
        return str(self.envelope.group_control_number)

    @property
    def st02(self) -> str:
        return f"{self.envelope.transaction_control_number:04d}"

    def position(self, prefix: str) -> int:
        """Position in the transaction set (ST is 1) of the first segment starting so."""
        d = DEFAULT
        segments = [s.strip() for s in self.x12.split(d.segment) if s.strip()]
        start = next(i for i, s in enumerate(segments) if s.startswith("ST*"))
        return next(i - start + 1 for i, s in enumerate(segments) if s.startswith(prefix))


def make_270(
    member_id: str = "W123456789",
    *,
    dependent: bool = False,
    service_date: date = SERVICE_DATE,
    service_types: tuple[str, ...] = ("30",),
    delimiters: Delimiters = DEFAULT,
    newline: bool = True,
) -> Sent:
    control = next(_controls)
    envelope = Envelope(
        sender_id=SENDER_ID,
        receiver_id=RECEIVER_ID,
        interchange_control_number=control,
        group_control_number=control,
        transaction_control_number=control,
        timestamp=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        usage_indicator="T",
    )
    inquiry = Inquiry(
        payer=Payer(code="SBXPAYER", name="Sandbox Health Plan"),
        provider=Provider(npi="1234567893", name="Sandbox Clinic"),
        subscriber=Subscriber(
            member_id=member_id,
            name=PersonName(last="Doe", first="Jane"),
            birth_date=date(1980, 1, 15),
            gender="F",
        ),
        dependent=(
            Dependent(name=PersonName(last="Doe", first="Tim"), birth_date=date(2012, 6, 1))
            if dependent
            else None
        ),
        service_date=service_date,
        trace_number=f"TRACE{control}",
        trace_originator=TRACE_ORIGINATOR,
        service_types=service_types,
    )
    x12 = build_270(envelope, inquiry, delimiters=delimiters, newline=newline)
    return Sent(x12=x12, inquiry=inquiry, envelope=envelope)


async def send(
    sandbox: SandboxClient, transport: str, x12: str, **kwargs: object
) -> httpx.Response:
    if transport == "x12-http":
        return await sandbox.send_x12(x12, **kwargs)
    return await sandbox.send_core(x12, **kwargs)  # type: ignore[arg-type]


def payload_of(response: httpx.Response, transport: str, kind: str) -> str:
    """The X12 of a 200 answer, checking the CORE envelope around it when there is one."""
    assert response.status_code == 200, response.text
    if transport == "x12-http":
        assert response.headers["content-type"].startswith("application/edi-x12")
        return response.text
    fields = parse_core(response)
    assert fields["PayloadType"] == PAYLOAD_TYPES[kind]
    assert fields["ErrorCode"] == "Success"
    return fields["Payload"]


async def ask_271(
    sandbox: SandboxClient, transport: str, sent: Sent
) -> tuple[EligibilityResponse, str]:
    response = await send(sandbox, transport, sent.x12)
    text = payload_of(response, transport, "271")
    return parse_271(text, service_date=sent.inquiry.service_date), text
