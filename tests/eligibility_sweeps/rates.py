"""Reading a rate off the instants requests were admitted or arrived, for the tests of
the partner's and payers' limits.

The limiter's token buckets hold one token (``transport/limits.py``): requests are
spaced ``1 / rps`` apart, so any window of ``w`` seconds holds at most ``1 + rps * w``
of them, and any one second at most ``rps`` (``rps + 1`` when a request sits on each
edge)."""

from __future__ import annotations

from collections.abc import Sequence

# Between a token taken in Redis and its 270 reaching the sandbox lies one loopback
# round trip (a new connection for a lane's first send) in an event loop shared with
# other work: arrivals may bunch by this much.
ARRIVAL_JITTER_SECONDS = 0.25


def busiest_second(instants: Sequence[float]) -> int:
    """The most instants in any sliding window of one second."""
    ordered = sorted(instants)
    return max(
        sum(1 for later in ordered[i:] if later - start < 1.0) for i, start in enumerate(ordered)
    )


def violations(instants: Sequence[float], rps: float, jitter: float) -> list[str]:
    """Windows that break the bucket's envelope, ``1 + rps * w`` in any window of ``w``
    seconds, each window widened by ``jitter``."""
    ordered = sorted(instants)
    found = []
    for i, start in enumerate(ordered):
        for j in range(i + 1, len(ordered)):
            span = ordered[j] - start
            allowed = 1 + rps * (span + jitter)
            if j - i + 1 > allowed:
                found.append(f"{j - i + 1} requests in {span:.3f} s (allowed {allowed:.1f})")
    return found
