"""One bounded HTTP exchange with a partner, and the failure texts every transport
shares.

Bounded three ways, because a partner that misbehaves must cost a worker at most
``timeout_seconds`` and a few megabytes: httpx connect/read/write/pool timeouts of
``timeout_seconds`` each, an overall ``asyncio.timeout`` of the same length (a server
trickling a byte at a time never trips a read timeout), and a 5 MB cap on the body,
read as a stream. Redirects are never followed: they would carry our credentials to
another host, and a moved endpoint is a configuration change for an operator.
"""

from __future__ import annotations

import asyncio
import http
import os
import time
from dataclasses import dataclass
from email.message import Message

import httpx

from eligibility_sweeps.transport.base import PartnerEndpoint, TransportFailure

MAX_RESPONSE_BYTES = 5 * 1024 * 1024
# Enough of an error page to say what went wrong, little enough to keep reasons short.
EXCERPT_CHARS = 200
_ERROR_BODY_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class RawResponse:
    status_code: int
    headers: httpx.Headers
    content: bytes
    elapsed_ms: float

    @property
    def text(self) -> str:
        return decode(self.content, self.headers)

    @property
    def content_type(self) -> str:
        return str(self.headers.get("content-type", ""))


class _TooLarge(Exception):
    pass


def decode(content: bytes, headers: httpx.Headers) -> str:
    """The body as text: the declared charset, else UTF-8 (X12 is ASCII in practice);
    undecodable bytes become U+FFFD rather than failing the check."""
    declared = Message()
    declared["content-type"] = headers.get("content-type", "text/plain")
    charset = declared.get_content_charset() or "utf-8"
    try:
        return content.decode(charset, errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The first ``limit`` characters with runs of whitespace collapsed to one space."""
    collapsed = " ".join(text.split())
    return collapsed if len(collapsed) <= limit else collapsed[:limit].rstrip() + "..."


def quote(partner: PartnerEndpoint, text: str, limit: int = EXCERPT_CHARS) -> str:
    """An upstream text fit for a reason: the partner's credentials blanked out first
    (so truncation cannot leave half a secret), then ``excerpt``."""
    return excerpt(partner.scrub(text), limit)


def timeout_failure(partner: PartnerEndpoint) -> TransportFailure:
    return TransportFailure(
        f"Timeout after {partner.timeout_seconds} s", retryable=True, breaker=True
    )


def http_status_failure(
    partner: PartnerEndpoint, response: RawResponse, detail: str
) -> TransportFailure:
    """``HTTP <status> from <partner>: <excerpt of detail>``; the HTTP reason phrase
    stands in for an empty body.

    Retryable: 5xx, 429 (the partner asks us to slow down) and 408 (a timeout by
    another name). Only 5xx suggests the partner is down and counts for the breaker;
    401, 403 and other 4xx mean the partner answered and will answer the same again.
    """
    status = response.status_code
    detail = quote(partner, detail)
    if not detail:
        try:
            detail = http.HTTPStatus(status).phrase
        except ValueError:
            detail = "(no body)"
    return TransportFailure(
        f"HTTP {status} from {partner.name}: {detail}",
        retryable=status >= 500 or status in (408, 429),
        breaker=status >= 500,
        status_code=status,
    )


def redirect_failure(partner: PartnerEndpoint, response: RawResponse) -> TransportFailure:
    location = response.headers.get("location", "")
    detail = f"redirected to {quote(partner, location)}" if location else "redirected"
    return TransportFailure(
        f"HTTP {response.status_code} from {partner.name}: {detail} "
        "(redirects are not followed; correct the endpoint URL)",
        retryable=False,
        status_code=response.status_code,
    )


async def _read_capped(response: httpx.Response, limit: int, *, truncate: bool) -> bytes:
    """At most ``limit`` bytes of the (decompressed) body: raises ``_TooLarge`` past it,
    or stops reading there when ``truncate`` (error pages, of which we keep an excerpt)."""
    declared = response.headers.get("content-length", "")
    if not truncate and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            if truncate:
                chunks.append(chunk[: limit - (size - len(chunk))])
                break
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def post(
    client: httpx.AsyncClient,
    partner: PartnerEndpoint,
    *,
    headers: dict[str, str],
    content: bytes | None = None,
    data: dict[str, str] | None = None,
    files: dict[str, tuple[None, bytes]] | None = None,
    auth: httpx.Auth | None = None,
) -> RawResponse:
    """POST to the partner's endpoint and read the answer within the bounds above.

    Raises ``TransportFailure`` for no usable answer at all (timeout, connection
    failure, oversized body); any HTTP status comes back for the caller to judge.
    """
    seconds = partner.timeout_seconds
    started = time.perf_counter()
    try:
        async with asyncio.timeout(seconds):
            request = client.build_request(
                "POST",
                partner.endpoint_url,
                headers=headers,
                content=content,
                data=data,
                files=files,
                timeout=httpx.Timeout(seconds),
            )
            # One buffer, so a multipart body leaves in one write rather than dozens.
            request.read()
            response = await client.send(
                request,
                auth=auth,
                follow_redirects=False,
                stream=True,
            )
            try:
                error = response.status_code >= 400
                body = await _read_capped(
                    response, _ERROR_BODY_BYTES if error else MAX_RESPONSE_BYTES, truncate=error
                )
            finally:
                await response.aclose()
    except TimeoutError:
        raise timeout_failure(partner) from None
    except httpx.PoolTimeout:
        # Our own pool was exhausted: says nothing about the partner's health.
        raise TransportFailure(
            f"Timeout after {seconds} s waiting for a free connection", retryable=True
        ) from None
    except httpx.TimeoutException:
        raise timeout_failure(partner) from None
    except _TooLarge:
        raise TransportFailure(
            f"Response from {partner.name} is larger than {MAX_RESPONSE_BYTES // (1024 * 1024)} MB",
            retryable=False,
        ) from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise TransportFailure(
            f"Invalid endpoint URL for {partner.name}: {quote(partner, str(exc))}",
            retryable=False,
        ) from None
    except httpx.DecodingError as exc:
        raise TransportFailure(
            f"Unreadable response from {partner.name}: {quote(partner, str(exc))}",
            retryable=False,
        ) from None
    except httpx.TransportError as exc:
        raise TransportFailure(
            f"Connection failed to {partner.name}: {_describe(partner, exc)}",
            retryable=True,
            breaker=True,
        ) from None
    elapsed_ms = (time.perf_counter() - started) * 1000
    return RawResponse(response.status_code, response.headers, body, elapsed_ms)


def _describe(partner: PartnerEndpoint, exc: BaseException) -> str:
    """httpx's message, with the root cause when it says more: httpx reports a refused
    connection only as "All connection attempts failed"."""
    chain = [exc]
    while len(chain) < 10 and (cause := chain[-1].__cause__ or chain[-1].__context__):
        chain.append(cause)
    root = chain[-1]
    if isinstance(root, OSError) and root.errno is not None and root.errno > 0:
        root_text = os.strerror(root.errno)
    else:
        root_text = str(root)
    text = str(exc) or root_text or type(exc).__name__
    if root_text and root_text not in text:
        text = f"{text} ({root_text})"
    return quote(partner, text)
