"""Settings of ``sweeps-worker``, validated before it starts (exit 2 naming the variable)."""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from eligibility_sweeps.config import PartnerSettings
from rcm_kit.settings import CommonSettings

# The longest a trading partner may take to answer (``trading_partner.timeout_seconds``).
MAX_PARTNER_TIMEOUT_SECONDS = 60


class WorkerSettings(CommonSettings, PartnerSettings):
    """``sweeps-worker``: the arq worker that runs eligibility sweeps."""

    SWEEPS_WORKER_HOST: str = Field(
        default="127.0.0.1", description="Address of /healthz and /metrics."
    )
    SWEEPS_WORKER_HEALTH_PORT: int = Field(
        default=9104, ge=1, le=65535, description="Port of /healthz and /metrics."
    )
    # A sweep job uses one connection per transaction it has open: a lane's claims and
    # its settlements overlap, so each lane may hold two.
    TENANT_POOL_SIZE: int = Field(
        default=10, ge=1, le=100, description="Connections per tenant database engine."
    )
    INGEST_QUEUE_CONCURRENCY: int = Field(
        default=4,
        ge=1,
        le=1000,
        description="Sweeps sending at once across all tenants and worker processes (a "
        "tenant sends one sweep at a time). Further sweeps stay QUEUED until a slot frees.",
    )
    SWEEP_MEMBER_CONCURRENCY: int = Field(
        default=64,
        ge=1,
        le=1024,
        description="Members of one sweep in flight at once across all worker processes; "
        "1 sends a sweep's members strictly one after the other.",
    )
    SWEEP_LANE_CONCURRENCY: int = Field(
        default=16,
        ge=1,
        le=256,
        description="Members in flight in one send job. A sweep runs "
        "ceil(SWEEP_MEMBER_CONCURRENCY / SWEEP_LANE_CONCURRENCY) send jobs (lanes) at "
        "once, which worker processes share.",
    )
    SWEEPS_WORKER_MAX_JOBS: int = Field(
        default=16, ge=1, le=1000, description="arq jobs one worker process runs at once."
    )
    SWEEPS_WORKER_POLL_SECONDS: float = Field(
        default=0.1, gt=0, le=5, description="How often an idle worker polls Redis for jobs."
    )
    SWEEP_SEND_JOB_SECONDS: float = Field(
        default=20.0,
        gt=0,
        le=600,
        description="A send job claims new members for this long, then goes to the back of "
        "the queue so other sweeps' jobs get their turn.",
    )
    SWEEP_JOB_TIMEOUT_SECONDS: int = Field(
        default=300,
        ge=10,
        le=3600,
        description="arq's job_timeout for sweep jobs; every member's send and retries end "
        "before it. A job whose worker died is retried this long plus 10 s later.",
    )
    SWEEP_RETRY_ATTEMPTS: int = Field(
        default=3,
        ge=0,
        le=10,
        description="Retries of a retryable 270 failure (timeout, HTTP 5xx or 429, AAA 42/80, "
        "circuit open, rate limit) inside the run before the member is FAILED.",
    )
    SWEEP_RETRY_BASE_SECONDS: float = Field(
        default=1.0,
        ge=0,
        le=300,
        description="Wait before the first retry; doubled before each further one.",
    )
    SWEEP_RETRY_MAX_SECONDS: float = Field(
        default=10.0, ge=0, le=600, description="Longest wait between two retries."
    )
    SWEEP_CLAIM_TIMEOUT_SECONDS: int = Field(
        default=600,
        ge=1,
        le=86_400,
        description="A member claimed this long ago whose 270 has no recorded reply "
        "belongs to a worker that died mid-send: it becomes FAILED 'Outcome unknown: 270 "
        "<trace number> was interrupted' and is never sent again by the run.",
    )
    SWEEP_ANSWER_TIMEOUT_SECONDS: int = Field(
        default=86_400,
        ge=1,
        le=30 * 86_400,
        description="A member whose partner accepted its 270 for later delivery and has not "
        "delivered the 271 this long after the claim becomes FAILED 'Outcome unknown: no "
        "271 for 270 <trace number>', so its run can finish.",
    )
    SWEEP_ROSTER_ATTEMPTS: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Attempts at the roster query before the run is FAILED with the error.",
    )
    SWEEP_ROSTER_RETRY_SECONDS: float = Field(
        default=2.0, ge=0, le=300, description="Wait before the second roster attempt; doubled."
    )
    SWEEP_TICK_SECONDS: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="How often a run's sweep.run job looks at it again while it is live: "
        "renews its slot, restarts lanes, expires stale claims, completes it.",
    )
    SWEEP_SLOT_LEASE_SECONDS: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="A sweep slot (INGEST_QUEUE_CONCURRENCY) not renewed for this long is "
        "free again: how long a sweep whose workers all died blocks others.",
    )
    SWEEPS_WORKER_SHUTDOWN_GRACE_SECONDS: float = Field(
        default=75.0,
        ge=0,
        le=600,
        description="On SIGTERM, how long the members in flight may take to finish (the "
        "longest partner timeout, 60 s, and time to save the answer); those still in flight "
        "then stay claimed (see SWEEP_CLAIM_TIMEOUT_SECONDS).",
    )

    @property
    def lanes(self) -> int:
        """Send jobs one sweep runs at once."""
        return math.ceil(self.SWEEP_MEMBER_CONCURRENCY / self.SWEEP_LANE_CONCURRENCY)

    def lane_width(self, lane: int) -> int:
        """Members in flight in lane ``lane``: the last lane takes the remainder, so the
        lanes together never exceed SWEEP_MEMBER_CONCURRENCY."""
        before = lane * self.SWEEP_LANE_CONCURRENCY
        return max(0, min(self.SWEEP_LANE_CONCURRENCY, self.SWEEP_MEMBER_CONCURRENCY - before))

    @model_validator(mode="after")
    def _timeouts_fit(self) -> WorkerSettings:
        # A claim must never be declared abandoned while its job can still be sending it.
        if self.SWEEP_CLAIM_TIMEOUT_SECONDS <= self.SWEEP_JOB_TIMEOUT_SECONDS:
            raise ValueError(
                "SWEEP_CLAIM_TIMEOUT_SECONDS: must be above SWEEP_JOB_TIMEOUT_SECONDS "
                f"({self.SWEEP_JOB_TIMEOUT_SECONDS})"
            )
        if self.SWEEP_ANSWER_TIMEOUT_SECONDS < self.SWEEP_CLAIM_TIMEOUT_SECONDS:
            raise ValueError(
                "SWEEP_ANSWER_TIMEOUT_SECONDS: must not be below SWEEP_CLAIM_TIMEOUT_SECONDS"
            )
        # The claiming window plus one member's slowest send must end before arq kills the job.
        if self.SWEEP_SEND_JOB_SECONDS + MAX_PARTNER_TIMEOUT_SECONDS >= (
            self.SWEEP_JOB_TIMEOUT_SECONDS
        ):
            raise ValueError(
                "SWEEP_JOB_TIMEOUT_SECONDS: must be above SWEEP_SEND_JOB_SECONDS + "
                f"{MAX_PARTNER_TIMEOUT_SECONDS} (the longest partner timeout)"
            )
        if self.SWEEP_RETRY_MAX_SECONDS < self.SWEEP_RETRY_BASE_SECONDS:
            raise ValueError("SWEEP_RETRY_MAX_SECONDS: must not be below SWEEP_RETRY_BASE_SECONDS")
        if self.SWEEP_SLOT_LEASE_SECONDS < 2 * self.SWEEP_TICK_SECONDS:
            raise ValueError("SWEEP_SLOT_LEASE_SECONDS: must be at least 2 x SWEEP_TICK_SECONDS")
        return self
