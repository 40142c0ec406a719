"""The sandbox's decisions: read the 270, record it, then answer as the rules say.

Every request passes the same steps, in the order a real partner's front door takes
them: record what arrived (even what is refused later, so tests can count attempts),
wait the configured latency, check credentials, maybe fail with a 503 (``error_rate``),
then answer: a TA1 or 999 for what could not be read, else the rule's answer, posted
later instead when delivery is delayed.

The answers are transport-neutral values; ``endpoints`` renders them as raw X12 or as
a CORE envelope. Only 271s are ever delayed: a 999 or TA1 is the partner's immediate
verdict on the request itself, and HTTP-level failures cannot be sent later at all.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from clearinghouse_sandbox import auth, core
from clearinghouse_sandbox.config import SandboxConfig, Settings
from clearinghouse_sandbox.delivery import Courier, Parcel
from clearinghouse_sandbox.metrics import REQUESTS
from clearinghouse_sandbox.records import CORE_MIME, X12_HTTP, Records, RequestRecord, Transport
from clearinghouse_sandbox.rules import CORE_ENVELOPE, UNREADABLE, Rule, rule_for
from clearinghouse_sandbox.x12.answers import build_271, build_999, build_ta1
from clearinghouse_sandbox.x12.inquiry import Envelope, Inquiry, TransactionRejected, read_270
from clearinghouse_sandbox.x12.tokens import DEFAULT, InterchangeRejected, NotX12
from clearinghouse_sandbox.x12.writer import AnswerEnvelope, ControlNumbers
from rcm_kit.clock import Clock, SystemClock
from rcm_kit.logging import get_logger

log = get_logger(__name__)

Waiter = Callable[[], Awaitable[None]]
"""Returns when the client has gone away (it closed the connection)."""

UNAVAILABLE_TEXT = "Service temporarily unavailable"
CORE_ERROR_TEXT = "Receiver unavailable: the payer system did not respond; try again later"
SERVER_ERROR_TEXT = "Internal server error: the clearinghouse could not process the request"
NOT_X12_TEXT = "Bad request: the body is not an X12 interchange (it does not start with ISA)"


@dataclass(frozen=True, slots=True)
class X12Answer:
    kind: Literal["271", "999", "TA1"]
    text: str


@dataclass(frozen=True, slots=True)
class HttpFailure:
    """An HTTP-level answer with a plain-text body, the same on both transports."""

    status: int
    text: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EnvelopeFailure:
    """A CORE error envelope (``ErrorCode``/``ErrorMessage``, no payload)."""

    status: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Deferred:
    """The 271 will be posted later; ``acknowledgment`` is the accepted 999 a CORE
    answer carries meanwhile (an x12-http answer is an empty 202)."""

    acknowledgment: str


Answer = X12Answer | HttpFailure | EnvelopeFailure | Deferred

CLIENT_GONE = HttpFailure(499, "Client closed the request")


@dataclass(frozen=True, slots=True)
class _Exchange:
    transport: Transport
    x12: str
    credentials: auth.Credentials
    core_request: core.CoreRequest | None = None


@dataclass(frozen=True, slots=True)
class _Reading:
    """A request as read: the 270, or the answer refusing it."""

    inquiry: Inquiry | None
    refusal: Answer | None
    envelope: Envelope | None


class Sandbox:
    """One sandbox: its runtime config, records, control numbers and courier."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = settings.initial_config()
        self.records = Records(settings.SANDBOX_RECORD_LIMIT)
        self.clock = clock or SystemClock()
        self.control_numbers = ControlNumbers()
        self._credential_file = settings.SANDBOX_INBOUND_CREDENTIAL_FILE
        self.courier = Courier(records=self.records, clock=self.clock, config=self._delivery_config)
        self._random = rng or random.Random()  # not for secrets: picks latencies and 503s

    def _delivery_config(self) -> SandboxConfig:
        """The config a delivery uses: with the credential from
        ``SANDBOX_INBOUND_CREDENTIAL_FILE`` while none is configured and the file holds one."""
        config = self.config
        if config.inbound_credential or self._credential_file is None:
            return config
        try:
            credential = self._credential_file.read_text().strip()
        except OSError:
            return config
        return config.updated({"inbound_credential": credential}) if credential else config

    def configure(self, changes: dict[str, Any]) -> SandboxConfig:
        self.config = self.config.updated(changes)
        return self.config

    async def answer_x12(
        self, body: str, credentials: auth.Credentials, client_gone: Waiter
    ) -> Answer:
        return await self._answer(_Exchange(X12_HTTP, body, credentials), client_gone)

    async def answer_core(
        self, fields: Mapping[str, str], authorization: str | None, client_gone: Waiter
    ) -> tuple[Answer, core.CoreRequest]:
        """The answer, and the envelope it answers (as sent, when it was refused)."""
        try:
            request, payload = core.read_request(fields)
        except core.EnvelopeError as error:
            self._record_refused_envelope(fields, error)
            return EnvelopeFailure(400, error.code, error.message), core.as_sent(fields)
        credentials = auth.Credentials.from_header(
            authorization, core=(request.username, request.password)
        )
        exchange = _Exchange(CORE_MIME, payload, credentials, request)
        return await self._answer(exchange, client_gone), request

    async def _answer(self, exchange: _Exchange, client_gone: Waiter) -> Answer:
        reading = self._read(exchange)
        rule = rule_for(reading.inquiry.subscriber_id) if reading.inquiry else None
        record = self.records.add_request(self._record(exchange, reading, rule))
        REQUESTS.labels(exchange.transport, record.rule).inc()
        answer = await self._decide(exchange, reading, rule, client_gone)
        record.answer = _describe(answer)
        log.info(
            "sandbox.answered",
            transport=exchange.transport,
            rule=record.rule,
            answer=record.answer,
        )
        return answer

    async def _decide(
        self, exchange: _Exchange, reading: _Reading, rule: Rule | None, client_gone: Waiter
    ) -> Answer:
        config = self.config
        if not await _pause(self._latency_seconds(config), client_gone):
            return CLIENT_GONE
        if rule is Rule.HTTP_401 or not auth.accepts(config, exchange.credentials):
            return HttpFailure(
                401,
                auth.UNAUTHORIZED_TEXT,
                {"WWW-Authenticate": 'Basic realm="clearinghouse-sandbox"'},
            )
        if rule is Rule.HTTP_503 or self._random.random() < config.error_rate:
            return HttpFailure(503, UNAVAILABLE_TEXT, {"Retry-After": "1"})
        if reading.inquiry is None or rule is None:
            return reading.refusal or self._not_x12(exchange)
        if rule is Rule.CORE_ERROR:
            if exchange.transport == X12_HTTP:
                return HttpFailure(500, SERVER_ERROR_TEXT)
            return EnvelopeFailure(200, core.RECEIVER_ERROR, CORE_ERROR_TEXT)
        if rule is Rule.HANG and not await _pause(config.hang_seconds, client_gone):
            return CLIENT_GONE
        return self._x12_answer(exchange, reading.inquiry, rule, config)

    def _x12_answer(
        self, exchange: _Exchange, inquiry: Inquiry, rule: Rule, config: SandboxConfig
    ) -> Answer:
        if rule is Rule.REJECT_999:
            return X12Answer("999", self._reject_subscriber_id(inquiry))
        if rule is Rule.REJECT_TA1:
            # 006: invalid interchange sender id.
            return X12Answer(
                "TA1", build_ta1(self._envelope(inquiry.envelope), inquiry.envelope.isa, "006")
            )
        text = build_271(
            inquiry, rule, self._envelope(inquiry.envelope), today=self.clock.now().date()
        )
        if config.delivery == "inline" and rule is not Rule.DELAYED:
            return X12Answer("271", text)
        self.courier.send_later(
            Parcel(exchange.transport, inquiry.trace_number, "271", text, exchange.core_request)
        )
        accepted = build_999(
            inquiry.envelope,
            self._envelope(inquiry.envelope),
            set_id="270",
            control_number=inquiry.transaction_control_number,
            accepted=True,
        )
        return Deferred(accepted)

    @staticmethod
    def _not_x12(exchange: _Exchange) -> Answer:
        """No ISA, so nothing to quote in a TA1: an HTTP 400, or CORE's PayloadIllegal."""
        if exchange.transport == X12_HTTP:
            return HttpFailure(400, NOT_X12_TEXT)
        return EnvelopeFailure(400, "PayloadIllegal", NOT_X12_TEXT.removeprefix("Bad request: "))

    def _reject_subscriber_id(self, inquiry: Inquiry) -> str:
        """``SBX-999``: the subscriber's NM109 refused as an invalid code value."""
        return build_999(
            inquiry.envelope,
            self._envelope(inquiry.envelope),
            set_id="270",
            control_number=inquiry.transaction_control_number,
            accepted=False,
            ik5_code="5",
            segment=("NM1", inquiry.subscriber_position, "2100", "8"),
            element=("9", "67", "7"),
            bad_value=inquiry.subscriber_id,
        )

    def _read(self, exchange: _Exchange) -> _Reading:
        try:
            inquiry = read_270(exchange.x12)
        except NotX12:
            return _Reading(None, None, None)
        except InterchangeRejected as error:
            received = (
                Envelope(delimiters=error.delimiters or DEFAULT, isa=error.isa, gs=None)
                if error.isa is not None
                else None
            )
            ta1 = build_ta1(self._envelope(received), error.isa, error.note_code)
            return _Reading(None, X12Answer("TA1", ta1), received)
        except TransactionRejected as error:
            ack = build_999(
                error.envelope,
                self._envelope(error.envelope),
                set_id=error.set_id,
                control_number=error.control_number,
                accepted=False,
                ik5_code=error.ik5_code,
                segment=error.segment,
                element=error.element,
            )
            return _Reading(None, X12Answer("999", ack), error.envelope)
        return _Reading(inquiry, None, inquiry.envelope)

    def _envelope(self, received: Envelope | None) -> AnswerEnvelope:
        return AnswerEnvelope(received, self.control_numbers.take(), self.clock.now())

    def _latency_seconds(self, config: SandboxConfig) -> float:
        latency = config.latency_ms
        if isinstance(latency, tuple):
            return self._random.uniform(*latency) / 1000
        return latency / 1000

    def _record(self, exchange: _Exchange, reading: _Reading, rule: Rule | None) -> RequestRecord:
        envelope, inquiry, request = reading.envelope, reading.inquiry, exchange.core_request
        return RequestRecord(
            received_at=self.clock.now(),
            transport=exchange.transport,
            rule=rule.value if rule else UNREADABLE,
            x12=exchange.x12,
            payload_id=request.payload_id if request else "",
            sender_id=(envelope.sender_id if envelope else "")
            or (request.sender_id if request else ""),
            receiver_id=(envelope.receiver_id if envelope else "")
            or (request.receiver_id if request else ""),
            subscriber_id=inquiry.subscriber_id if inquiry else "",
            dependent=inquiry is not None and inquiry.dependent is not None,
            trace_number=inquiry.trace_number if inquiry else "",
            interchange_control_number=envelope.interchange_control_number if envelope else "",
            group_control_number=envelope.group_control_number if envelope else "",
            transaction_control_number=inquiry.transaction_control_number if inquiry else "",
            service_date=inquiry.service_date if inquiry else None,
            service_types=inquiry.service_types if inquiry else (),
        )

    def _record_refused_envelope(
        self, fields: Mapping[str, str], error: core.EnvelopeError
    ) -> None:
        record = RequestRecord(
            received_at=self.clock.now(),
            transport=CORE_MIME,
            rule=CORE_ENVELOPE,
            x12=fields.get("Payload", ""),
            payload_id=fields.get("PayloadID", ""),
            sender_id=fields.get("SenderID", ""),
            receiver_id=fields.get("ReceiverID", ""),
            answer=error.code,
        )
        self.records.add_request(record)
        REQUESTS.labels(CORE_MIME, CORE_ENVELOPE).inc()


def _describe(answer: Answer) -> str:
    if isinstance(answer, X12Answer):
        return answer.kind
    if isinstance(answer, HttpFailure):
        return f"HTTP {answer.status}"
    if isinstance(answer, EnvelopeFailure):
        return answer.code
    return "accepted"


async def _pause(seconds: float, client_gone: Waiter) -> bool:
    """Sleep ``seconds``; False when the client went away first.

    Waiting on the disconnect too keeps an abandoned ``SBX-HANG`` from holding the
    server: uvicorn waits for running requests before it shuts down.
    """
    if seconds <= 0:
        return True
    sleeper = asyncio.ensure_future(asyncio.sleep(seconds))
    watcher = asyncio.ensure_future(client_gone())
    try:
        await asyncio.wait({sleeper, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, watcher):
            task.cancel()
        await asyncio.gather(sleeper, watcher, return_exceptions=True)
    return not sleeper.cancelled()
