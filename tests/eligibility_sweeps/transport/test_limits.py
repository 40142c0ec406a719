"""The shared limits against a real Redis, with two ``Limits`` on separate connections
standing in for two worker processes."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from redis.asyncio import Redis

from eligibility_sweeps.transport import (
    Admission,
    CheckRefused,
    Limits,
    PartnerEndpoint,
    TransportFailure,
)
from rcm_kit.clock import FixedClock
from tests.eligibility_sweeps.rates import busiest_second
from tests.eligibility_sweeps.transport.conftest import endpoint

PAYER = UUID("00000000-0000-4000-8000-0000000000a1")
OTHER_PAYER = UUID("00000000-0000-4000-8000-0000000000b2")
DOWN = TransportFailure("HTTP 503 from Acme Clearinghouse: busy", retryable=True, breaker=True)
REJECTED = TransportFailure("HTTP 401 from Acme Clearinghouse: Unauthorized", retryable=False)


@pytest.fixture
def partner() -> PartnerEndpoint:
    return endpoint("http://127.0.0.1:9/core", timeout_seconds=1)


@pytest.fixture
def limits_pair(redis_clients: tuple[Redis, Redis], prefix: str) -> tuple[Limits, Limits]:
    first, second = redis_clients
    return (
        Limits(first, prefix=prefix, breaker_cooldown_seconds=0.5),
        Limits(second, prefix=prefix, breaker_cooldown_seconds=0.5),
    )


async def admit(
    limits: Limits,
    partner: PartnerEndpoint,
    *,
    partner_rps: float | None = None,
    payer_id: UUID = PAYER,
    payer_label: str = "Aetna",
    payer_rps: float | None = None,
    daily_cap: int | None = None,
    max_wait_seconds: float = 10.0,
) -> Admission:
    return await limits.admit(
        partner=partner,
        partner_rps=partner_rps,
        payer_id=payer_id,
        payer_label=payer_label,
        payer_rps=payer_rps,
        daily_cap=daily_cap,
        max_wait_seconds=max_wait_seconds,
    )


async def refused(limits: Limits, partner: PartnerEndpoint, **kwargs: object) -> CheckRefused:
    with pytest.raises(CheckRefused) as caught:
        await admit(limits, partner, **kwargs)  # type: ignore[arg-type]
    return caught.value


def utc_today() -> str:
    return datetime.now(UTC).date().isoformat()


# Rates


async def test_partner_rate_holds_across_processes(
    limits_pair: tuple[Limits, Limits], partner: PartnerEndpoint
) -> None:
    instants: list[float] = []

    async def one(limits: Limits) -> None:
        await admit(limits, partner, partner_rps=5)
        instants.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(*(one(limits_pair[i % 2]) for i in range(20)))

    # One every 0.2 s, whichever process asks: 19 intervals.
    assert len(instants) == 20
    assert max(instants) - started >= 3.7
    assert busiest_second(instants) <= 5 + 1


async def test_the_stricter_of_partner_and_payer_rate_applies(
    limits_pair: tuple[Limits, Limits], partner: PartnerEndpoint
) -> None:
    first, second = limits_pair
    started = time.monotonic()

    await asyncio.gather(
        *(admit((first, second)[i % 2], partner, partner_rps=50, payer_rps=4) for i in range(8))
    )
    payer_bound = time.monotonic() - started
    other = endpoint("http://127.0.0.1:9/other")
    started = time.monotonic()
    await asyncio.gather(
        *(
            admit((first, second)[i % 2], other, partner_rps=4, payer_id=OTHER_PAYER, payer_rps=50)
            for i in range(8)
        )
    )
    partner_bound = time.monotonic() - started

    # Each: one every 0.25 s, so 7 intervals.
    assert 1.7 <= payer_bound < 2.8
    assert 1.7 <= partner_bound < 2.8


async def test_waiting_on_one_bucket_takes_nothing_from_the_other(
    limits_pair: tuple[Limits, Limits],
    partner: PartnerEndpoint,
    prefix: str,
    redis_clients: tuple[Redis, Redis],
) -> None:
    first, second = limits_pair
    await admit(first, partner, partner_rps=5, payer_rps=1, daily_cap=10)
    redis = redis_clients[0]
    partner_bucket = f"{prefix}:limits:partner:{partner.trading_partner_id}:rate"
    before = await redis.hgetall(partner_bucket)

    refusal = await refused(
        second, partner, partner_rps=5, payer_rps=1, daily_cap=10, max_wait_seconds=0.3
    )

    assert refusal.reason == (
        "Rate limit of 1 requests per second for Aetna left no free slot within 0.3 s"
    )
    assert refusal.retryable is True
    # The partner's bucket is as the send left it, and only the send counted.
    assert before
    assert await redis.hgetall(partner_bucket) == before
    assert await redis.get(f"{prefix}:limits:payer:{PAYER}:daily:{utc_today()}") == b"1"


async def test_rate_refusal_names_the_partner_when_it_is_the_short_one(
    limits_pair: tuple[Limits, Limits], partner: PartnerEndpoint
) -> None:
    first, _ = limits_pair
    await admit(first, partner, partner_rps=0.5)

    refusal = await refused(first, partner, partner_rps=0.5, max_wait_seconds=0.5)

    assert refusal.reason == (
        "Rate limit of 0.5 requests per second for Acme Clearinghouse "
        "left no free slot within 0.5 s"
    )


# Daily caps


async def test_daily_cap_refuses_the_fourth_request_of_the_day(
    limits_pair: tuple[Limits, Limits], partner: PartnerEndpoint
) -> None:
    first, second = limits_pair
    for limits in (first, second, first):
        await admit(limits, partner, daily_cap=3)

    refusal = await refused(second, partner, daily_cap=3)

    assert refusal.reason == "Daily cap of 3 requests reached for Aetna"
    assert refusal.retryable is False


async def test_daily_caps_are_per_payer_and_per_tenant(
    redis_clients: tuple[Redis, Redis], prefix: str, partner: PartnerEndpoint
) -> None:
    tenant_a = Limits(redis_clients[0], prefix=prefix + ":a")
    tenant_b = Limits(redis_clients[1], prefix=prefix + ":b")
    for _ in range(2):
        await admit(tenant_a, partner, daily_cap=2)
    await refused(tenant_a, partner, daily_cap=2)

    await admit(tenant_a, partner, payer_id=OTHER_PAYER, payer_label="Cigna", daily_cap=2)
    await admit(tenant_b, partner, daily_cap=2)


async def test_refusals_do_not_count_toward_the_cap(
    redis_clients: tuple[Redis, Redis], prefix: str, partner: PartnerEndpoint
) -> None:
    clock = FixedClock(datetime(2026, 11, 22, 12, tzinfo=UTC))
    limits = Limits(redis_clients[0], prefix=prefix, clock=clock.now)
    await admit(limits, partner, payer_rps=2, daily_cap=3)
    await admit(limits, partner, payer_rps=2, daily_cap=3)
    # Refused by the rate: never sent, so not counted.
    await refused(limits, partner, payer_rps=2, daily_cap=3, max_wait_seconds=0)

    third = await admit(limits, partner, payer_rps=2, daily_cap=3)
    for _ in range(3):
        await refused(limits, partner, payer_rps=2, daily_cap=3)

    assert third.daily_count == 3
    counter = f"{prefix}:limits:payer:{PAYER}:daily:2026-11-22"
    assert await redis_clients[0].get(counter) == b"3"
    assert 0 < await redis_clients[0].ttl(counter) <= 2 * 24 * 3600


async def test_daily_cap_starts_again_at_utc_midnight(
    redis_clients: tuple[Redis, Redis], prefix: str, partner: PartnerEndpoint
) -> None:
    clock = FixedClock(datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC))
    limits = Limits(redis_clients[0], prefix=prefix, clock=clock.now)
    await admit(limits, partner, daily_cap=1)
    await refused(limits, partner, daily_cap=1)

    clock.advance(timedelta(seconds=2))

    admitted = await admit(limits, partner, daily_cap=1)
    assert admitted.daily_count == 1
    assert admitted.admitted_at == datetime(2026, 11, 23, 0, 0, 1, tzinfo=UTC)


# Circuit breaker


async def open_breaker(limits: Limits, partner: PartnerEndpoint) -> None:
    for _ in range(5):
        await limits.record(await admit(limits, partner), failure=DOWN)


async def test_breaker_opens_after_five_breaker_failures(
    limits_pair: tuple[Limits, Limits], partner: PartnerEndpoint
) -> None:
    first, second = limits_pair
    for limits in (first, second, first, second):
        await limits.record(await admit(limits, partner), failure=DOWN)
    assert (await first.breaker_state(partner.trading_partner_id)).state == "closed"

    await first.record(await admit(first, partner), failure=DOWN)

    refusal = await refused(second, partner)
    assert refusal.reason == (
        "Circuit open for Acme Clearinghouse: HTTP 503 from Acme Clearinghouse: busy"
    )
    assert refusal.retryable is True
    state = await second.breaker_state(partner.trading_partner_id)
    assert (state.state, state.failures, state.last_error) == ("open", 5, DOWN.reason)
    assert state.opened_at is not None
    assert abs(state.opened_at - datetime.now(UTC)) < timedelta(seconds=5)


async def test_answers_that_are_errors_do_not_open_the_breaker_and_reset_the_count(
    limits_pair: tuple[Limits, Limits], partner: PartnerEndpoint
) -> None:
    first, _ = limits_pair
    for _ in range(10):
        await first.record(await admit(first, partner), failure=REJECTED)
    for _ in range(4):
        await first.record(await admit(first, partner), failure=DOWN)

    await first.record(await admit(first, partner), failure=REJECTED)
    for _ in range(4):
        await first.record(await admit(first, partner), failure=DOWN)

    state = await first.breaker_state(partner.trading_partner_id)
    assert (state.state, state.failures) == ("closed", 4)


async def test_a_reply_resets_the_count(
    limits_pair: tuple[Limits, Limits], partner: PartnerEndpoint
) -> None:
    first, _ = limits_pair
    for _ in range(4):
        await first.record(await admit(first, partner), failure=DOWN)

    await first.record(await admit(first, partner), failure=None)

    state = await first.breaker_state(partner.trading_partner_id)
    assert (state.state, state.failures, state.last_error) == ("closed", 0, None)


async def test_after_the_cooldown_exactly_one_caller_probes(
    limits_pair: tuple[Limits, Limits],
    partner: PartnerEndpoint,
    redis_clients: tuple[Redis, Redis],
    prefix: str,
) -> None:
    first, second = limits_pair
    await open_breaker(first, partner)
    await refused(second, partner)
    await asyncio.sleep(0.6)
    assert (await first.breaker_state(partner.trading_partner_id)).state == "half-open"

    outcomes = await asyncio.gather(
        *(admit(limits_pair[i % 2], partner) for i in range(8)), return_exceptions=True
    )

    probes = [outcome for outcome in outcomes if isinstance(outcome, Admission)]
    refusals = [outcome for outcome in outcomes if isinstance(outcome, CheckRefused)]
    assert len(probes) == 1
    assert probes[0].probe
    assert len(refusals) == 7
    assert all(r.reason.startswith("Circuit open for Acme Clearinghouse: ") for r in refusals)
    state = await first.breaker_state(partner.trading_partner_id)
    assert (state.state, state.probe_in_flight) == ("half-open", True)
    # A crashed probe frees itself: its claim lasts the partner's timeout plus 5 s.
    probe_key = f"{prefix}:limits:partner:{partner.trading_partner_id}:probe"
    assert 5000 < await redis_clients[0].pttl(probe_key) <= 6000

    await second.record(probes[0], failure=None)

    state = await first.breaker_state(partner.trading_partner_id)
    assert (state.state, state.failures, state.probe_in_flight) == ("closed", 0, False)
    await admit(second, partner)


async def test_a_failed_probe_reopens_for_another_cooldown(
    limits_pair: tuple[Limits, Limits], partner: PartnerEndpoint
) -> None:
    first, second = limits_pair
    await open_breaker(first, partner)
    await asyncio.sleep(0.6)
    probe = await admit(second, partner)
    assert probe.probe

    failed = TransportFailure("Timeout after 1 s", retryable=True, breaker=True)
    await second.record(probe, failure=failed)

    refusal = await refused(first, partner)
    assert refusal.reason == "Circuit open for Acme Clearinghouse: Timeout after 1 s"
    assert (await first.breaker_state(partner.trading_partner_id)).state == "open"
    await asyncio.sleep(0.6)
    assert (await admit(first, partner)).probe


async def test_a_probe_refused_before_sending_lets_another_caller_probe(
    limits_pair: tuple[Limits, Limits], partner: PartnerEndpoint
) -> None:
    first, second = limits_pair
    for _ in range(2):
        await admit(first, partner, daily_cap=2)
    await open_breaker(first, partner)
    await asyncio.sleep(0.6)

    capped = await refused(first, partner, daily_cap=2)

    assert capped.reason == "Daily cap of 2 requests reached for Aetna"
    assert (await admit(second, partner, payer_id=OTHER_PAYER)).probe


async def test_tenants_have_separate_breakers(
    redis_clients: tuple[Redis, Redis], prefix: str, partner: PartnerEndpoint
) -> None:
    tenant_a = Limits(redis_clients[0], prefix=prefix + ":a")
    tenant_b = Limits(redis_clients[1], prefix=prefix + ":b")
    await open_breaker(tenant_a, partner)

    await refused(tenant_a, partner)
    assert not (await admit(tenant_b, partner)).probe
