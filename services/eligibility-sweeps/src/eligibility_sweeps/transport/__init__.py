"""Sending 270s to trading partners (CAQH CORE MIME or plain X12 over HTTP) and the
limits shared by every process: per-partner and per-payer rates, per-payer daily caps
and a circuit breaker per partner."""

from eligibility_sweeps.transport.base import (
    PartnerEndpoint,
    Reply,
    Sender,
    TransportFailure,
    sender_for,
)
from eligibility_sweeps.transport.core_mime import CoreMimeSender
from eligibility_sweeps.transport.limits import (
    Admission,
    BreakerState,
    CheckRefused,
    Limits,
)
from eligibility_sweeps.transport.x12_http import X12HttpSender

__all__ = [
    "Admission",
    "BreakerState",
    "CheckRefused",
    "CoreMimeSender",
    "Limits",
    "PartnerEndpoint",
    "Reply",
    "Sender",
    "TransportFailure",
    "X12HttpSender",
    "sender_for",
]
