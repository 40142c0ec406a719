"""What every transport shares: the partner as a transport sees it, the answer, the
failure, and the choice of sender by the partner's ``transport``.

A failure carries the words an operator reads (``reason``, the API.md failure texts) and
two decisions made where the cause is still known: may the check be retried
(``retryable``), and does it say the partner is down (``breaker``), which the circuit
breaker in ``limits`` counts.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit
from uuid import UUID

import httpx

from eligibility_sweeps.models.trading_partner import AuthType, Transport
from eligibility_sweeps.trading_partner.credentials import SecretBox, require_box


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class PartnerEndpoint:
    """What a transport needs from a trading partner row, secrets already decrypted.

    ``secret`` is the basic password or the bearer token in clear: ``repr`` leaves it
    out (and masks a password written into the URL), so a logged or printed endpoint
    never shows a credential.
    """

    trading_partner_id: UUID
    name: str
    transport: Transport
    endpoint_url: str
    auth_type: AuthType
    username: str | None
    secret: str | None
    sender_id: str
    receiver_id: str
    timeout_seconds: int

    def __repr__(self) -> str:
        url = self.scrub(self.endpoint_url) if self.secrets() else self.endpoint_url
        return (
            f"PartnerEndpoint(trading_partner_id={self.trading_partner_id!r}, "
            f"name={self.name!r}, transport={str(self.transport)!r}, endpoint_url={url!r}, "
            f"auth_type={str(self.auth_type)!r}, username={self.username!r}, "
            f"secret={'***' if self.secret else None!r}, sender_id={self.sender_id!r}, "
            f"receiver_id={self.receiver_id!r}, timeout_seconds={self.timeout_seconds!r})"
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any], *, box: SecretBox | None) -> PartnerEndpoint:
        """From an ``eligibility.trading_partner`` row (a mapping by column name).

        Raises ``SecretsKeyMissing`` when the row holds a secret but no key is
        configured, ``SecretUnreadable`` when no configured key opens it: both are
        configuration faults the caller reports, not transport failures.
        """
        encrypted = row["auth_secret_encrypted"]
        return cls(
            trading_partner_id=row["trading_partner_id"],
            name=row["name"],
            transport=Transport(row["transport"]),
            endpoint_url=row["endpoint_url"],
            auth_type=AuthType(row["auth_type"]),
            username=row["auth_username"],
            secret=None if encrypted is None else require_box(box).decrypt(encrypted),
            sender_id=row["sender_id"],
            receiver_id=row["receiver_id"],
            timeout_seconds=int(row["timeout_seconds"]),
        )

    def secrets(self) -> tuple[str, ...]:
        """Every form in which a credential of ours could travel and come back in an
        answer or an error text: the secret itself, the basic-auth header value and a
        password written into the endpoint URL."""
        found: list[str] = []
        if self.secret:
            found.append(self.secret)
            if self.auth_type is AuthType.BASIC:
                pair = f"{self.username or ''}:{self.secret}".encode()
                found.append(base64.b64encode(pair).decode())
        url_password = urlsplit(self.endpoint_url).password
        if url_password:
            found.append(url_password)
        # Longest first, so a secret that contains another is replaced whole.
        return tuple(sorted(found, key=len, reverse=True))

    def scrub(self, text: str) -> str:
        """``text`` with every credential of this partner replaced by ``***``."""
        for secret in self.secrets():
            text = text.replace(secret, "***")
        return text


@dataclass(frozen=True, slots=True)
class Reply:
    """What the partner answered in real time.

    ``body`` is the X12 answer (271, 999 or TA1 text), or ``""`` when the partner took
    the 270 for later delivery (x12-http 202/204, or a CORE envelope with no payload).
    """

    body: str
    status_code: int
    elapsed_ms: float
    payload_type: str | None = None
    """The CORE ``PayloadType`` of the answer (core-mime only)."""
    payload_id: str | None = None
    """The CORE ``PayloadID`` of the answer (core-mime only), for the audit trail."""


class TransportFailure(Exception):
    """A 270 that got no usable answer.

    ``reason`` is the API.md failure text shown to operators; ``retryable`` says whether
    sending the same 270 again later may succeed (timeouts, connection errors, HTTP 5xx,
    429, "busy" CORE codes); ``breaker`` says whether the failure suggests the partner
    is down (timeouts, connection errors, HTTP 5xx only), which opens the circuit.
    """

    reason: str
    retryable: bool
    breaker: bool
    status_code: int | None

    def __init__(
        self, reason: str, *, retryable: bool, breaker: bool = False, status_code: int | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.breaker = breaker
        self.status_code = status_code

    def __repr__(self) -> str:
        return (
            f"TransportFailure({self.reason!r}, retryable={self.retryable}, "
            f"breaker={self.breaker}, status_code={self.status_code})"
        )


class Sender(Protocol):
    async def send(self, partner: PartnerEndpoint, x12: str, *, payload_id: str) -> Reply: ...


def sender_for(
    partner: PartnerEndpoint,
    client: httpx.AsyncClient,
    *,
    clock: Callable[[], datetime] | None = None,
) -> Sender:
    """The sender for the partner's transport, sharing the caller's pooled ``client``.

    ``clock`` stamps the CORE ``TimeStamp`` (tests pass a fixed one).
    """
    # Imported here: both sender modules import this one for the types above.
    from eligibility_sweeps.transport.core_mime import CoreMimeSender
    from eligibility_sweeps.transport.x12_http import X12HttpSender

    if partner.transport == Transport.CORE_MIME:
        return CoreMimeSender(client) if clock is None else CoreMimeSender(client, clock=clock)
    return X12HttpSender(client)
