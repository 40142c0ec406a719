"""What the schedule, cron-help and scheduler-status routes take and answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from eligibility_sweeps.models import MAX_WINDOW_DAYS
from eligibility_sweeps.schedule.cron import MAX_PREVIEW, validate_cron, validate_timezone

# Far beyond any useful window, and keeps ``fire date + days`` inside the calendar.
MAX_RELATIVE_DAYS = 3650

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Cron = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=120),
    AfterValidator(validate_cron),
]
TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(validate_timezone)]
RelativeDays = Annotated[int, Field(ge=-MAX_RELATIVE_DAYS, le=MAX_RELATIVE_DAYS)]


def _distinct(values: list[UUID]) -> list[UUID]:
    return list(dict.fromkeys(values))


PayerIds = Annotated[list[UUID], Field(max_length=1000), AfterValidator(_distinct)]

_CRON_HELP = (
    "5 fields: minute hour day-of-month month day-of-week, read in `timezone` "
    "(e.g. `0 2 * * *`, 02:00 every day)."
)
_WINDOW_HELP = (
    "Days relative to the fire date, counted in the schedule's time zone: 0 and 7 = the "
    f"next 7 days, -14 and 0 = the past 14 days. Start <= end, at most {MAX_WINDOW_DAYS} "
    "days apart."
)


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="1-120 characters.")
    cron: Cron = Field(description=_CRON_HELP)
    timezone: TimeZone = Field(default="UTC", description="IANA time zone of `cron`.")
    facility_id: UUID | None = Field(default=None, description="Null: every facility.")
    window_start_days: RelativeDays = Field(description=_WINDOW_HELP)
    window_end_days: RelativeDays = Field(description=_WINDOW_HELP)
    payer_ids: PayerIds = Field(
        default_factory=list,
        description="Only members holding a policy from one of these payers; empty: every "
        "active coverage.",
    )
    active: bool = Field(default=True, description="False: created paused.")


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may not be null")
    return value


class ScheduleUpdate(BaseModel):
    """Only the fields sent change; `payer_ids` is replaced whole."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    cron: Cron | None = None
    timezone: TimeZone | None = None
    facility_id: UUID | None = Field(default=None, description="Null: every facility.")
    window_start_days: RelativeDays | None = None
    window_end_days: RelativeDays | None = None
    payer_ids: PayerIds | None = None
    active: bool | None = Field(default=None, description="The same as pause / resume.")

    _present = field_validator(
        "name",
        "cron",
        "timezone",
        "window_start_days",
        "window_end_days",
        "payer_ids",
        "active",
    )(_not_null)


class ScheduleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    schedule_id: UUID
    name: str
    cron: str
    timezone: str
    facility_id: UUID | None = Field(description="Null: every facility.")
    window_start_days: int
    window_end_days: int
    payer_ids: list[UUID] = Field(description="Empty: every active coverage.")
    active: bool
    next_fire_at: datetime | None = Field(
        description="The next firing (UTC); null while paused. The SPA counts down to it."
    )
    last_fired_at: datetime | None = Field(description="The last firing that made a run.")
    created_at: datetime
    updated_at: datetime


class CronPreset(BaseModel):
    id: str
    label: str
    cron: str


class CronPreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cron: Cron = Field(description=_CRON_HELP)
    timezone: TimeZone = Field(default="UTC", description="IANA time zone of `cron`.")
    count: int = Field(default=5, ge=1, le=MAX_PREVIEW, description=f"1-{MAX_PREVIEW}.")


class CronPreview(BaseModel):
    cron: str = Field(description="The expression, whitespace normalised.")
    timezone: str
    next_fire_times: list[datetime] = Field(description="UTC instants, ascending.")


class SchedulerStatus(BaseModel):
    enabled: bool = Field(
        description="Whether a running supervisor fires schedules; false when it runs with "
        "SWEEP_SCHEDULER_ENABLED=false, and false when no supervisor is running."
    )
    running: bool = Field(description="Whether a supervisor has reported recently.")
    last_tick_at: datetime | None = Field(
        description="When a supervisor last checked its schedules; null when none has "
        "reported recently (none running)."
    )
    armed_schedules: int = Field(
        description="Your organization's schedules the supervisor holds and will fire."
    )
