"""Delayed delivery: the 271 posted later to the inbound URL, as a real partner's
deferred answer would arrive.

Each delivery is an asyncio task the ``Courier`` keeps a reference to (a task nobody
references can be garbage-collected mid-flight) and cancels on shutdown. A failed
post (connection error, timeout or a non-2xx status) is retried with doubling waits;
every attempt is recorded for ``GET /sandbox/deliveries``. The inbound URL and the
credential are read at each attempt, so a test may set them after the 270 was sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from clearinghouse_sandbox import core
from clearinghouse_sandbox.config import SandboxConfig
from clearinghouse_sandbox.metrics import DELIVERIES
from clearinghouse_sandbox.records import CORE_MIME, DeliveryRecord, Records, Transport
from rcm_kit.clock import Clock
from rcm_kit.logging import get_logger

log = get_logger(__name__)

X12_CONTENT_TYPE = "application/edi-x12"
EXCERPT_CHARS = 500


@dataclass(frozen=True, slots=True)
class Parcel:
    """A delayed answer: the X12 and how the 270 came (the answer goes back the same way)."""

    transport: Transport
    trace_number: str
    answer: str
    x12: str
    core_request: core.CoreRequest | None


class Courier:
    def __init__(
        self,
        *,
        records: Records,
        clock: Clock,
        config: Callable[[], SandboxConfig],
        attempts: int = 4,
        backoff_seconds: float = 0.5,
        timeout_seconds: float = 10.0,
    ) -> None:
        self._records = records
        self._clock = clock
        self._config = config
        self._attempts = attempts
        self._backoff_seconds = backoff_seconds
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout_seconds))
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def send_later(self, parcel: Parcel) -> None:
        task = asyncio.create_task(self._deliver(parcel), name="sandbox.delivery")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel deliveries still waiting or retrying, then close the HTTP client."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._client.aclose()

    async def _deliver(self, parcel: Parcel) -> None:
        await asyncio.sleep(self._config().delay_seconds)
        for attempt in range(1, self._attempts + 1):
            if await self._attempt(parcel, attempt):
                return
            if attempt < self._attempts:
                await asyncio.sleep(self._backoff_seconds * 2 ** (attempt - 1))
        log.warning("sandbox.delivery_abandoned", trace_number=parcel.trace_number)

    async def _attempt(self, parcel: Parcel, attempt: int) -> bool:
        config = self._config()
        record = DeliveryRecord(
            attempted_at=self._clock.now(),
            trace_number=parcel.trace_number,
            transport=parcel.transport,
            answer=parcel.answer,
            url=config.inbound_url,
            attempt=attempt,
            status_code=None,
        )
        self._records.add_delivery(record)
        if config.inbound_url is None:
            record.error = "no inbound_url configured"
        else:
            await self._post(parcel, config, config.inbound_url, record)
        DELIVERIES.labels("delivered" if record.delivered else "failed").inc()
        log.info(
            "sandbox.delivery_attempted",
            trace_number=parcel.trace_number,
            attempt=attempt,
            status=record.status_code,
            error=record.error,
        )
        return record.delivered

    async def _post(
        self, parcel: Parcel, config: SandboxConfig, url: str, record: DeliveryRecord
    ) -> None:
        content, content_type = self._body(parcel, config)
        headers = {"Content-Type": content_type}
        if config.inbound_credential:
            headers["Authorization"] = f"Bearer {config.inbound_credential}"
        try:
            response = await self._client.post(url, content=content, headers=headers)
        except httpx.HTTPError as error:
            record.error = f"{type(error).__name__}: {error}"[:EXCERPT_CHARS]
            return
        record.status_code = response.status_code
        record.response_excerpt = response.text[:EXCERPT_CHARS]

    def _body(self, parcel: Parcel, config: SandboxConfig) -> tuple[bytes, str]:
        if parcel.transport != CORE_MIME:
            return parcel.x12.encode(), X12_CONTENT_TYPE
        request = parcel.core_request
        fields = core.answer_fields(
            request,
            at=self._clock.now(),
            payload_type=core.RESPONSE_271,
            payload=parcel.x12,
            credentials=(
                request.receiver_id if request else "",
                config.inbound_credential or "",
            ),
        )
        return core.encode_multipart(fields)
