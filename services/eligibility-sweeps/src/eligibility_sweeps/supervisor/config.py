"""Settings of ``sweeps-supervisor``, validated before it starts (exit 2 naming the variable)."""

from __future__ import annotations

from pydantic import Field, model_validator

from rcm_kit.settings import CommonSettings


class SupervisorSettings(CommonSettings):
    """``sweeps-supervisor``: the cron firing loop of eligibility sweeps."""

    SWEEP_SCHEDULER_ENABLED: bool = Field(
        default=True,
        description="false suspends cron firing (break-glass): the heartbeat says enabled "
        "false, the API, manual runs and the reconciler keep working.",
    )
    SWEEP_SCHEDULER_TICK_SECONDS: float = Field(
        default=1.0,
        ge=0.1,
        le=10,
        description="Time between two ticks: how late after its fire time a run is created, "
        "and how often the heartbeat is written.",
    )
    SWEEP_SCHEDULER_RESYNC_SECONDS: float = Field(
        default=60.0,
        ge=1,
        le=3600,
        description="Every this often every tenant's active schedules are read again: the "
        "backstop for a change signal the supervisor did not hear.",
    )
    SWEEP_MISSED_FIRE_GRACE_SECONDS: int = Field(
        default=3600,
        ge=60,
        le=86_400,
        description="After downtime, the most recent missed fire time still fires (once) when "
        "it is at most this old; older ones are recorded as skipped, never fired.",
    )
    SWEEP_RECONCILE_SECONDS: float = Field(
        default=30.0,
        ge=1,
        le=3600,
        description="How often runs left QUEUED or RUNNING without a live arq job are "
        "enqueued again.",
    )
    SWEEP_RECONCILE_GRACE_SECONDS: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="A QUEUED or RUNNING run whose row changed less than this long ago is "
        "left alone by the reconciler (its creator may be about to enqueue it).",
    )
    SWEEP_SCHEDULER_TENANT_CONCURRENCY: int = Field(
        default=10, ge=1, le=200, description="Tenants worked on at once."
    )
    SWEEP_SCHEDULER_TENANT_TIMEOUT_SECONDS: float = Field(
        default=20.0,
        ge=1,
        le=300,
        description="The longest one tenant's share of a tick, resync or reconcile may take "
        "before it is abandoned (that tenant only; the others carry on).",
    )
    SWEEPS_SUPERVISOR_HOST: str = Field(
        default="127.0.0.1", description="Address of /healthz and /metrics."
    )
    SWEEPS_SUPERVISOR_HEALTH_PORT: int = Field(
        default=9105, ge=1, le=65535, description="Port of /healthz and /metrics."
    )
    SWEEPS_SUPERVISOR_SHUTDOWN_GRACE_SECONDS: float = Field(
        default=10.0,
        ge=0,
        le=600,
        description="On SIGTERM, how long the tick in flight may take to finish.",
    )

    @model_validator(mode="after")
    def _resync_is_not_faster_than_ticks(self) -> SupervisorSettings:
        if self.SWEEP_SCHEDULER_RESYNC_SECONDS < self.SWEEP_SCHEDULER_TICK_SECONDS:
            raise ValueError(
                "SWEEP_SCHEDULER_RESYNC_SECONDS: must not be below SWEEP_SCHEDULER_TICK_SECONDS"
            )
        return self
