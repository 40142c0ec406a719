"""What the run routes take and answer."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from eligibility_sweeps.models import CoverageStatusValue, MemberStatus, RunStatus, RunTrigger

# Far beyond any useful window, and keeps ``today + days`` inside the calendar.
MAX_RELATIVE_DAYS = 3650

MemberView = Literal["all", "exceptions", "anomalies"]


def _distinct(values: list[UUID]) -> list[UUID]:
    return list(dict.fromkeys(values))


PayerIds = Annotated[list[UUID], Field(max_length=1000), AfterValidator(_distinct)]
RelativeDays = Annotated[int, Field(ge=-MAX_RELATIVE_DAYS, le=MAX_RELATIVE_DAYS)]


class RunCreate(BaseModel):
    """An ad-hoc run. Give the dates either relative to today in your organization's time
    zone (`window_start_days`, `window_end_days`) or as calendar dates
    (`service_date_from`, `service_date_to`), not both."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    facility_id: UUID | None = Field(default=None, description="Null: every facility.")
    payer_ids: PayerIds = Field(
        default_factory=list,
        description="Only members holding a policy from one of these payers; empty: every "
        "active coverage.",
    )
    window_start_days: RelativeDays | None = Field(
        default=None,
        description="First service date, in days from today (your organization's time zone); "
        "`-14` with `window_end_days` `0` is the past 14 days.",
    )
    window_end_days: RelativeDays | None = Field(
        default=None, description="Last service date, in days from today; `7`: a week ahead."
    )
    service_date_from: date | None = Field(default=None, description="First service date.")
    service_date_to: date | None = Field(default=None, description="Last service date.")


class RunScope(BaseModel):
    facility_id: UUID | None = Field(description="Null: every facility.")
    service_date_from: date
    service_date_to: date
    payer_ids: list[UUID] = Field(description="Empty: every active coverage.")


class RunCounts(BaseModel):
    """Counted from the member rows on every read: `total` is the sum of the five statuses."""

    total: int
    queued: int
    submitted: int
    received: int
    failed: int
    skipped: int
    anomalies: int = Field(description="RECEIVED members whose 271 shows an anomaly.")


class RunRead(BaseModel):
    sweep_run_id: UUID
    schedule_id: UUID | None = Field(description="The schedule the run came from; null ad hoc.")
    name: str
    trigger: RunTrigger
    status: RunStatus = Field(
        description="COMPLETED, CANCELLED and FAILED are final: the status never changes again."
    )
    scope: RunScope
    counts: RunCounts
    retry_of: UUID | None = Field(
        description="For a RETRY run: the run whose FAILED members it retries."
    )
    scheduled_for: datetime | None = Field(description="The cron fire time of a SCHEDULED run.")
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    error: str | None = Field(description="Why a FAILED run could not proceed.")


class RunMemberRead(BaseModel):
    member_id: UUID
    member_name: str = Field(description='"Last, First".')
    service_date: date = Field(description="The member's earliest visit in the window.")
    status: MemberStatus
    failure_reason: str | None
    coverage_status: CoverageStatusValue | None = Field(description="Null until a 271 lands.")
    anomalies: list[str]
    check_ids: list[UUID] = Field(description="The member's 270/271 exchanges in this run.")
    updated_at: datetime
