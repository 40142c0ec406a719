"""Limits every process shares through Redis, checked before a 270 leaves: the
partner's circuit breaker, the payer's daily cap, and the partner's and the payer's
request rates.

Why Redis and Lua: workers on several hosts send to the same partner, so the counters
must be shared, and each decision must be one atomic step (two processes must never
both take the last token, nor both become the half-open probe). Rates and breaker
timing use the Redis server's ``TIME`` so hosts whose clocks disagree still agree on
the refill. The daily cap's UTC day comes from the injected ``clock`` instead, so
tests can cross midnight without waiting for it.

Keys live under ``prefix`` (``rcm:<tenant_id>``): tenants never share counters.

- ``<prefix>:limits:partner:<id>:rate`` / ``...:payer:<id>:rate``: token buckets
  (hash ``tokens``, ``at``) of one token, refilled continuously at ``rps``: requests
  leave ``1 / rps`` apart, so no second ever carries more than the published rate (a
  bucket of a second's worth would let ``2 * rps`` through in the first second, which a
  payer counting per second answers with 429s); they expire once they would be full
  again.
- ``<prefix>:limits:payer:<id>:daily:<YYYY-MM-DD>``: 270s admitted that UTC day;
  expires after two days.
- ``<prefix>:limits:partner:<id>:breaker``: hash ``state`` (``open`` or absent),
  ``failures``, ``last_error``, ``opened_at`` (Redis time); ``...:probe``: the
  half-open probe's token, ``SET NX`` with a TTL so a crashed probe frees itself.

Breaker outcomes, decided here once for every transport:

- Any reply (a 271, but also a 999, a TA1 or an AAA rejection) closes the breaker and
  resets the count: the partner is up.
- A ``TransportFailure`` with ``breaker=True`` (timeout, connection failure, HTTP 5xx)
  adds one to the consecutive count; at ``breaker_threshold`` the breaker opens and
  keeps that failure's reason as ``last_error``.
- A failure with ``breaker=False`` (HTTP 401/403/4xx, a CORE error code, an unreadable
  answer) also closes and resets: the partner answered, so it is reachable, and the
  fault is in our configuration or request, which a breaker cannot fix. Counting those
  would let a wrong password look like an outage; ignoring them would let five
  timeouts spread over a day of healthy 4xx answers open the circuit.
- After ``breaker_cooldown_seconds`` exactly one caller becomes the probe; its
  success closes the breaker, its breaker failure reopens it for another cooldown.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal
from uuid import UUID

from redis.asyncio import Redis

from eligibility_sweeps.transport.base import PartnerEndpoint, TransportFailure

BreakerStatus = Literal["closed", "open", "half-open"]

DAILY_COUNTER_TTL_SECONDS = 2 * 24 * 3600
# A breaker nobody has touched for a day is forgotten (closed): stale evidence.
BREAKER_TTL_SECONDS = 24 * 3600
# A probe is presumed dead this long after its own timeout.
PROBE_GRACE_SECONDS = 5
# Spreads waiters that were told the same wait, so they do not all retry at once.
_MAX_JITTER_SECONDS = 0.01


def utcnow() -> datetime:
    return datetime.now(UTC)


# KEYS[1]: the payer's daily counter; KEYS[2..]: token buckets.
# ARGV[1]: daily cap ('' for none); ARGV[2]: counter TTL in seconds;
# ARGV[2i-1], ARGV[2i] for KEYS[i], i >= 2: refill rate per second, capacity.
# Returns {'ok', count} with every token taken and the counter incremented,
# {'cap', count} refused, or {'wait', seconds, n}: nothing taken, bucket n-1 is short.
_ACQUIRE = """
local cap = tonumber(ARGV[1])
local count = 0
if cap then
  count = tonumber(redis.call('GET', KEYS[1]) or '0')
  if count >= cap then return {'cap', tostring(count)} end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local levels = {}
local wait, short = 0, 0
for i = 2, #KEYS do
  local rate = tonumber(ARGV[2 * i - 1])
  local capacity = tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'at')
  local tokens, at = tonumber(state[1]), tonumber(state[2])
  if tokens == nil or at == nil then
    tokens = capacity
  else
    tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
  end
  levels[i] = tokens
  if tokens < 1 and (1 - tokens) / rate > wait then
    wait, short = (1 - tokens) / rate, i - 1
  end
end
if wait > 0 then
  return {'wait', string.format('%.6f', wait), tostring(short)}
end
for i = 2, #KEYS do
  local rate = tonumber(ARGV[2 * i - 1])
  local capacity = tonumber(ARGV[2 * i])
  redis.call('HSET', KEYS[i], 'tokens', string.format('%.9f', levels[i] - 1),
             'at', string.format('%.6f', now))
  redis.call('PEXPIRE', KEYS[i], math.ceil(capacity / rate * 1000) + 1000)
end
if cap then
  count = redis.call('INCR', KEYS[1])
  if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
end
return {'ok', tostring(count)}
"""

# KEYS[1]: breaker hash; KEYS[2]: probe key. ARGV: cooldown seconds, probe TTL in
# milliseconds, probe token. Returns {'closed'|'open'|'probe', last_error}.
_GATE = """
local state = redis.call('HMGET', KEYS[1], 'state', 'opened_at', 'last_error')
if state[1] ~= 'open' then return {'closed', ''} end
local last_error = state[3] or ''
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if now - (tonumber(state[2]) or 0) < tonumber(ARGV[1]) then return {'open', last_error} end
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[2]) then
  return {'probe', last_error}
end
return {'open', last_error}
"""

# KEYS[1]: breaker hash; KEYS[2]: probe key. ARGV: probe token ('' if none),
# threshold, reason, hash TTL in seconds. Returns the consecutive failure count.
_FAILURE = """
local t = redis.call('TIME')
local now = string.format('%.6f', tonumber(t[1]) + tonumber(t[2]) / 1000000)
local probing = ARGV[1] ~= '' and redis.call('GET', KEYS[2]) == ARGV[1]
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'last_error', ARGV[3])
if probing then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now)
  redis.call('DEL', KEYS[2])
elseif failures >= tonumber(ARGV[2]) and redis.call('HGET', KEYS[1], 'state') ~= 'open' then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now)
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return failures
"""

# KEYS[1]: probe key. ARGV: token, then 'release' or a TTL in milliseconds.
_PROBE_OWNED = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == 'release' then return redis.call('DEL', KEYS[1]) end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""


class CheckRefused(Exception):
    """A check refused before any 270 was sent: circuit open, daily cap reached, or no
    request slot within the wait allowed. ``reason`` is the API.md failure text."""

    reason: str
    retryable: bool

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable

    def __repr__(self) -> str:
        return f"CheckRefused({self.reason!r}, retryable={self.retryable})"


@dataclass(frozen=True, slots=True, kw_only=True)
class Admission:
    """Leave to send one 270; hand it back to ``Limits.record`` with the outcome."""

    trading_partner_id: UUID
    partner_name: str
    payer_id: UUID
    admitted_at: datetime
    waited_seconds: float
    daily_count: int | None = None
    """This 270's number in the payer's daily count, when the payer has a cap."""
    probe_token: str | None = field(default=None, repr=False)

    @property
    def probe(self) -> bool:
        """Whether this send is the half-open breaker's one probe."""
        return self.probe_token is not None


@dataclass(frozen=True, slots=True)
class BreakerState:
    state: BreakerStatus
    failures: int
    last_error: str | None
    opened_at: datetime | None
    probe_in_flight: bool = False


@dataclass(frozen=True, slots=True)
class _Bucket:
    key: str
    rps: float
    label: str

    @property
    def capacity(self) -> float:
        return 1.0


class Limits:
    """The limits of one tenant (``prefix``), shared through ``redis`` by every process."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        clock: Callable[[], datetime] = utcnow,
        breaker_threshold: int = 5,
        breaker_cooldown_seconds: float = 30.0,
    ) -> None:
        if breaker_threshold < 1:
            raise ValueError("breaker_threshold must be at least 1")
        self._redis = redis
        self._prefix = f"{prefix}:limits"
        self._clock = clock
        self._threshold = breaker_threshold
        self._cooldown = breaker_cooldown_seconds
        self._acquire = redis.register_script(_ACQUIRE)
        self._gate = redis.register_script(_GATE)
        self._failure = redis.register_script(_FAILURE)
        self._probe_owned = redis.register_script(_PROBE_OWNED)

    async def admit(
        self,
        *,
        partner: PartnerEndpoint,
        partner_rps: float | None,
        payer_id: UUID,
        payer_label: str,
        payer_rps: float | None,
        daily_cap: int | None,
        max_wait_seconds: float = 60.0,
    ) -> Admission:
        """Leave to send one 270 now, or ``CheckRefused``.

        In this order: the breaker (open: refused, retryable; after the cooldown one
        caller across all processes becomes the probe), the payer's daily cap (reached:
        refused, not retryable today), then one token from both the partner's and the
        payer's bucket, taken together or not at all, waiting as long as Redis says is
        needed; when that would pass ``max_wait_seconds``: refused, retryable. Only an
        admission counts toward the daily cap.
        """
        probe_token = await self._pass_breaker(partner)
        try:
            daily_count, waited = await self._take_slot(
                partner=partner,
                partner_rps=partner_rps,
                payer_id=payer_id,
                payer_label=payer_label,
                payer_rps=payer_rps,
                daily_cap=daily_cap,
                max_wait_seconds=max_wait_seconds,
            )
        except BaseException:
            if probe_token is not None:
                # Never sent: let another caller probe instead of waiting out the TTL.
                await self._probe_owned(
                    keys=[self._probe_key(partner.trading_partner_id)],
                    args=[probe_token, "release"],
                )
            raise
        if probe_token is not None:
            # The TTL runs from the send, not from the wait for a token.
            await self._probe_owned(
                keys=[self._probe_key(partner.trading_partner_id)],
                args=[probe_token, _probe_ttl_ms(partner)],
            )
        return Admission(
            trading_partner_id=partner.trading_partner_id,
            partner_name=partner.name,
            payer_id=payer_id,
            admitted_at=self._now(),
            waited_seconds=waited,
            daily_count=daily_count if daily_cap is not None else None,
            probe_token=probe_token,
        )

    async def record(self, admission: Admission, *, failure: TransportFailure | None) -> None:
        """The outcome of an admitted send, for the breaker (see the module text)."""
        partner_id = admission.trading_partner_id
        if failure is None or not failure.breaker:
            # Both keys: a probe still in flight is moot once the breaker is closed,
            # and its outcome then counts as an ordinary one.
            await self._redis.delete(self._breaker_key(partner_id), self._probe_key(partner_id))
            return
        await self._failure(
            keys=[self._breaker_key(partner_id), self._probe_key(partner_id)],
            args=[
                admission.probe_token or "",
                self._threshold,
                failure.reason,
                BREAKER_TTL_SECONDS,
            ],
        )

    async def breaker_state(self, trading_partner_id: UUID) -> BreakerState:
        """The breaker as callers would find it now (half-open once the cooldown has
        passed, or while a probe is in flight)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hmget(
                self._breaker_key(trading_partner_id),
                ["state", "failures", "last_error", "opened_at"],
            )
            pipe.exists(self._probe_key(trading_partner_id))
            pipe.time()
            (
                (state, failures, last_error, opened_at),
                probes,
                (seconds, micros),
            ) = await pipe.execute()
        opened = float(_text(opened_at) or 0)
        now = seconds + micros / 1_000_000
        status: BreakerStatus = "closed"
        if _text(state) == "open":
            status = "half-open" if probes or now - opened >= self._cooldown else "open"
        return BreakerState(
            state=status,
            failures=int(_text(failures) or 0),
            last_error=_text(last_error) or None,
            opened_at=datetime.fromtimestamp(opened, UTC) if status != "closed" else None,
            probe_in_flight=bool(probes),
        )

    async def _pass_breaker(self, partner: PartnerEndpoint) -> str | None:
        """None when closed, the probe token when this caller is the probe; else refused."""
        token = secrets.token_hex(16)
        verdict, last_error = await self._gate(
            keys=[
                self._breaker_key(partner.trading_partner_id),
                self._probe_key(partner.trading_partner_id),
            ],
            args=[self._cooldown, _probe_ttl_ms(partner), token],
        )
        match _text(verdict):
            case "closed":
                return None
            case "probe":
                return token
        raise CheckRefused(
            f"Circuit open for {partner.name}: {_text(last_error) or 'no answer'}",
            retryable=True,
        )

    async def _take_slot(
        self,
        *,
        partner: PartnerEndpoint,
        partner_rps: float | None,
        payer_id: UUID,
        payer_label: str,
        payer_rps: float | None,
        daily_cap: int | None,
        max_wait_seconds: float,
    ) -> tuple[int, float]:
        """Cap and tokens in one atomic step, retried after the wait Redis names."""
        buckets = [
            _Bucket(self._key("partner", partner.trading_partner_id, "rate"), rps, partner.name)
            for rps in _rate(partner_rps)
        ] + [
            _Bucket(self._key("payer", payer_id, "rate"), rps, payer_label)
            for rps in _rate(payer_rps)
        ]
        if not buckets and daily_cap is None:
            return 0, 0.0  # nothing to count or wait for: spare the round trip
        rate_args: list[float] = []
        for bucket in buckets:
            rate_args += [bucket.rps, bucket.capacity]
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            outcome = await self._acquire(
                keys=[self._daily_key(payer_id, self._today()), *(b.key for b in buckets)],
                args=[
                    "" if daily_cap is None else daily_cap,
                    DAILY_COUNTER_TTL_SECONDS,
                    *rate_args,
                ],
            )
            verdict = _text(outcome[0])
            if verdict == "ok":
                return int(_text(outcome[1])), loop.time() - started
            if verdict == "cap":
                raise CheckRefused(
                    f"Daily cap of {daily_cap} requests reached for {payer_label}",
                    retryable=False,
                )
            wait = float(_text(outcome[1]))
            if loop.time() + wait - started > max_wait_seconds:
                short = buckets[int(_text(outcome[2])) - 1]
                raise CheckRefused(
                    f"Rate limit of {short.rps:g} requests per second for {short.label} "
                    f"left no free slot within {max_wait_seconds:g} s",
                    retryable=True,
                )
            await asyncio.sleep(wait + random.uniform(0, _MAX_JITTER_SECONDS))

    def _now(self) -> datetime:
        now = self._clock()
        return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)

    def _today(self) -> date:
        return self._now().date()

    def _key(self, kind: str, ident: UUID, suffix: str) -> str:
        return f"{self._prefix}:{kind}:{ident}:{suffix}"

    def _daily_key(self, payer_id: UUID, day: date) -> str:
        return self._key("payer", payer_id, f"daily:{day.isoformat()}")

    def _breaker_key(self, trading_partner_id: UUID) -> str:
        return self._key("partner", trading_partner_id, "breaker")

    def _probe_key(self, trading_partner_id: UUID) -> str:
        return self._key("partner", trading_partner_id, "probe")


def _rate(rps: float | None) -> list[float]:
    """No bucket for no limit; a non-positive rate is a caller's bug, not "no limit"."""
    if rps is None:
        return []
    if rps <= 0:
        raise ValueError(f"requests per second must be positive, got {rps}")
    return [float(rps)]


def _probe_ttl_ms(partner: PartnerEndpoint) -> int:
    return (partner.timeout_seconds + PROBE_GRACE_SECONDS) * 1000


def _text(value: object) -> str:
    """A Redis reply as text, whether or not the client decodes responses."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode()
    return str(value)
