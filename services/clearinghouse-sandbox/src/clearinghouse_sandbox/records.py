"""What the sandbox received and delivered, kept in memory for tests to query.

Both are bounded rings (``SANDBOX_RECORD_LIMIT``): a benchmark sending millions of
270s must not grow the process without end, and only recent traffic is ever asked
about. Records hold X12 bodies (test data by design) and are served over HTTP only;
they are never logged.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

Transport = Literal["x12-http", "core-mime"]
X12_HTTP: Transport = "x12-http"
CORE_MIME: Transport = "core-mime"


@dataclass(slots=True, kw_only=True)
class RequestRecord:
    """One request to ``/x12`` or ``/core``. ``answer`` is filled in once decided."""

    received_at: datetime
    transport: Transport
    rule: str
    x12: str
    payload_id: str = ""
    sender_id: str = ""
    receiver_id: str = ""
    subscriber_id: str = ""
    dependent: bool = False
    trace_number: str = ""
    interchange_control_number: str = ""
    group_control_number: str = ""
    transaction_control_number: str = ""
    service_date: date | None = None
    service_types: tuple[str, ...] = ()
    answer: str = ""
    """What went back: ``271``, ``999``, ``TA1``, ``accepted`` (delayed), ``HTTP 401``..."""


@dataclass(slots=True, kw_only=True)
class DeliveryRecord:
    """One attempt to post a delayed answer to the inbound URL."""

    attempted_at: datetime
    trace_number: str
    transport: Transport
    answer: str
    url: str | None
    attempt: int
    status_code: int | None
    response_excerpt: str = ""
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(slots=True)
class Records:
    limit: int
    requests: deque[RequestRecord] = field(init=False)
    deliveries: deque[DeliveryRecord] = field(init=False)

    def __post_init__(self) -> None:
        self.requests = deque(maxlen=self.limit)
        self.deliveries = deque(maxlen=self.limit)

    def add_request(self, record: RequestRecord) -> RequestRecord:
        self.requests.append(record)
        return record

    def add_delivery(self, record: DeliveryRecord) -> None:
        self.deliveries.append(record)

    def find_requests(
        self, *, subscriber_id: str | None, since: datetime | None, limit: int
    ) -> list[RequestRecord]:
        """Oldest first: the first ``limit`` received at or after ``since``."""
        wanted = subscriber_id.strip().upper() if subscriber_id else None
        found = (
            r
            for r in list(self.requests)
            if (wanted is None or r.subscriber_id.upper() == wanted)
            and (since is None or r.received_at >= since)
        )
        return list(itertools.islice(found, limit))

    def find_deliveries(self, *, trace_number: str | None, limit: int) -> list[DeliveryRecord]:
        found = (
            d
            for d in list(self.deliveries)
            if trace_number is None or d.trace_number == trace_number
        )
        return list(itertools.islice(found, limit))

    def clear(self) -> None:
        self.requests.clear()
        self.deliveries.clear()
