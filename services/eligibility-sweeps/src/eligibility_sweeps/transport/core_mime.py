"""CAQH CORE connectivity (rule vC2.2.0), real-time: the 270 travels as the ``Payload``
of a multipart/form-data envelope and the answer comes back in one.

Basic credentials travel in the envelope (``UserName``/``Password``) as the rule
requires; a bearer partner gets its token in an ``Authorization`` header instead, and a
partner with no authentication gets neither. The answer's envelope is read with the
standard library's MIME parser. ``ErrorCode`` other than ``Success`` is a failure in
the partner's own words: ``CORE error <code>: <ErrorMessage>``.
"""

from __future__ import annotations

import email.errors
import email.policy
import email.utils
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesParser

import httpx

from eligibility_sweeps.models.trading_partner import AuthType
from eligibility_sweeps.transport import exchange
from eligibility_sweeps.transport.base import PartnerEndpoint, Reply, TransportFailure

PAYLOAD_TYPE_270 = "X12_270_Request_005010X279A1"
PROCESSING_MODE = "RealTime"
CORE_RULE_VERSION = "2.2.0"
SUCCESS = "Success"

# Codes that say "not now" rather than "not like this": retrying later may succeed.
# ``Receiver`` is the SOAP fault code CORE borrowed for a failure on the receiver's
# side; the rest are the busy/unavailable spellings partners use. Every other code
# (``...Required``, ``...Illegal``, ``UnAuthorized``, ``VersionMismatch``, ``Sender``)
# is about our envelope or credentials and fails the same way every time.
_RETRYABLE_CODES = frozenset({"receiver", "serverbusy", "busy", "unavailable"})
_RETRYABLE_WORDS = ("busy", "unavailable", "timeout", "timedout", "tryagain", "retry")


def core_error_retryable(code: str) -> bool:
    folded = code.replace("_", "").replace("-", "").lower()
    return folded in _RETRYABLE_CODES or any(word in folded for word in _RETRYABLE_WORDS)


def utcnow() -> datetime:
    return datetime.now(UTC)


def timestamp(instant: datetime) -> str:
    """CORE ``TimeStamp``: UTC, ``YYYY-MM-DDTHH:MM:SSZ``."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EnvelopeError(ValueError):
    """The answer is not a readable CORE envelope."""


def parse_envelope(content: bytes, content_type: str) -> dict[str, str]:
    """The fields of a multipart/form-data CORE envelope by name (the first of each).

    Field values are decoded by their part's charset, else UTF-8, and keep their line
    endings: an X12 payload is returned exactly as sent.
    """
    if not content_type.lower().startswith("multipart/"):
        raise EnvelopeError(
            f"not a multipart envelope ({exchange.excerpt(content_type) or 'no type'})"
        )
    header = b"Content-Type: " + content_type.encode("latin-1", errors="replace") + b"\r\n\r\n"
    # compat32, not email.policy.HTTP: the same fields for form data, parsed about seven
    # times faster (the modern policy's header objects cost ~5 ms per reply).
    message = BytesParser(policy=email.policy.compat32).parsebytes(header + content)
    if not message.is_multipart():
        raise EnvelopeError("not a multipart envelope")
    if any(
        isinstance(
            defect,
            email.errors.NoBoundaryInMultipartDefect | email.errors.StartBoundaryNotFoundDefect,
        )
        for defect in message.defects
    ):
        raise EnvelopeError("the multipart boundary was not found")
    fields: dict[str, str] = {}
    parts = message.get_payload()
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, Message):
            continue
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, tuple):  # an RFC 2231 encoded name
            name = email.utils.collapse_rfc2231_value(name)
        if not isinstance(name, str) or name in fields:
            continue
        raw = part.get_payload(decode=True)
        value = raw if isinstance(raw, bytes) else b""
        charset = part.get_content_charset() or "utf-8"
        try:
            fields[name] = value.decode(charset, errors="replace")
        except LookupError:
            fields[name] = value.decode("utf-8", errors="replace")
    if not fields:
        raise EnvelopeError("the envelope has no fields")
    return fields


@dataclass(frozen=True, slots=True)
class CoreMimeSender:
    """Sends a 270 over CAQH CORE MIME through the caller's pooled ``client``."""

    client: httpx.AsyncClient
    clock: Callable[[], datetime] = field(default=utcnow)

    def envelope(self, partner: PartnerEndpoint, x12: str, *, payload_id: str) -> dict[str, str]:
        """The text fields of the request envelope, in the rule's order (``Payload``
        follows them)."""
        fields = {
            "PayloadType": PAYLOAD_TYPE_270,
            "ProcessingMode": PROCESSING_MODE,
            "PayloadID": payload_id,
            "TimeStamp": timestamp(self.clock()),
        }
        if partner.auth_type == AuthType.BASIC:
            fields["UserName"] = partner.username or ""
            fields["Password"] = partner.secret or ""
        fields |= {
            "SenderID": partner.sender_id,
            "ReceiverID": partner.receiver_id,
            "CORERuleVersion": CORE_RULE_VERSION,
        }
        return fields

    async def send(self, partner: PartnerEndpoint, x12: str, *, payload_id: str) -> Reply:
        headers: dict[str, str] = {}
        if partner.auth_type == AuthType.BEARER:
            headers["Authorization"] = f"Bearer {partner.secret or ''}"
        response = await exchange.post(
            self.client,
            partner,
            headers=headers,
            data=self.envelope(partner, x12, payload_id=payload_id),
            # A part with no filename: httpx sends multipart only when "files" is given,
            # and a filename-less part is exactly the rule's plain form field.
            files={"Payload": (None, x12.encode())},
        )
        status = response.status_code
        if status >= 400:
            raise exchange.http_status_failure(partner, response, _error_detail(response))
        if 300 <= status < 400:
            raise exchange.redirect_failure(partner, response)
        if not response.content.strip() and status in (202, 204):
            return Reply(body="", status_code=status, elapsed_ms=response.elapsed_ms)
        try:
            fields = parse_envelope(response.content, response.content_type)
        except EnvelopeError as exc:
            raise TransportFailure(
                f"Unreadable CORE response from {partner.name} (HTTP {status}): {exc}",
                retryable=False,
                status_code=status,
            ) from None
        code = fields.get("ErrorCode", "").strip()
        if code and code != SUCCESS:
            message = exchange.quote(partner, fields.get("ErrorMessage", "")) or "(no message)"
            raise TransportFailure(
                f"CORE error {exchange.quote(partner, code, 60)}: {message}",
                retryable=core_error_retryable(code),
                status_code=status,
            )
        if not code and "Payload" not in fields:
            raise TransportFailure(
                f"Unreadable CORE response from {partner.name} (HTTP {status}): "
                "neither ErrorCode nor Payload in the envelope",
                retryable=False,
                status_code=status,
            )
        return Reply(
            body=fields.get("Payload", ""),
            status_code=status,
            elapsed_ms=response.elapsed_ms,
            payload_type=fields.get("PayloadType") or None,
            payload_id=fields.get("PayloadID") or None,
        )


def _error_detail(response: exchange.RawResponse) -> str:
    """What to quote from an HTTP error: the envelope's code and message when the
    partner sent one (more useful than raw MIME), else the body."""
    try:
        fields = parse_envelope(response.content, response.content_type)
    except EnvelopeError:
        return response.text
    code = fields.get("ErrorCode", "").strip()
    if not code:
        return response.text
    return f"CORE error {code}: {fields.get('ErrorMessage', '')}"
