"""The sandbox's own Prometheus counters (HTTP totals come from ``rcm_kit.web``)."""

from __future__ import annotations

from prometheus_client import Counter

REQUESTS = Counter(
    "sandbox_requests_total",
    "Eligibility requests received by the clearinghouse sandbox",
    ["transport", "rule"],
)
DELIVERIES = Counter(
    "sandbox_deliveries_total",
    "Attempts to post a delayed answer to the inbound URL",
    ["outcome"],
)
