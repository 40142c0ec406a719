"""Plain X12 over HTTP: the 270 is the request body (``application/edi-x12``), the
answer is the response body.

A 200 carries the 271 (or a 999/TA1); 202 and 204 mean the partner took the 270 and
will deliver the answer later to our inbound route, so the reply body is empty unless
the partner put an X12 acknowledgment in it.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from eligibility_sweeps.models.trading_partner import AuthType
from eligibility_sweeps.transport import exchange
from eligibility_sweeps.transport.base import PartnerEndpoint, Reply, TransportFailure
from eligibility_sweeps.x12.detect import sniff

CONTENT_TYPE = "application/edi-x12"


@dataclass(frozen=True, slots=True)
class X12HttpSender:
    """Sends a 270 as raw X12 over HTTP through the caller's pooled ``client``."""

    client: httpx.AsyncClient

    async def send(self, partner: PartnerEndpoint, x12: str, *, payload_id: str) -> Reply:
        # payload_id has no place on this wire: the 270's own control and trace numbers
        # identify it.
        headers = {"Content-Type": CONTENT_TYPE}
        auth: httpx.Auth | None = None
        if partner.auth_type == AuthType.BASIC:
            auth = httpx.BasicAuth(partner.username or "", partner.secret or "")
        elif partner.auth_type == AuthType.BEARER:
            headers["Authorization"] = f"Bearer {partner.secret or ''}"
        response = await exchange.post(
            self.client, partner, headers=headers, content=x12.encode(), auth=auth
        )
        status = response.status_code
        if status >= 400:
            raise exchange.http_status_failure(partner, response, response.text)
        if 300 <= status < 400:
            raise exchange.redirect_failure(partner, response)
        body = response.text
        if status in (202, 204):
            # "Accepted" pages in prose are not answers; an X12 acknowledgment is.
            body = body if sniff(body) != "unknown" else ""
        elif not body.strip():
            # A 200 with nothing in it is neither an answer nor a promise of one;
            # the inquiry is safe to repeat.
            raise TransportFailure(
                f"Empty answer from {partner.name} (HTTP {status})",
                retryable=True,
                status_code=status,
            )
        return Reply(body=body, status_code=status, elapsed_ms=response.elapsed_ms)
