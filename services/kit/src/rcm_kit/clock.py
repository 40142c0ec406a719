"""One injectable clock, so tests can cross midnight and daylight-saving changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class FixedClock:
    """A clock that only moves when told to."""

    instant: datetime = field(default_factory=lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self.instant

    def advance(self, delta: timedelta) -> None:
        self.instant += delta


def today_in(clock: Clock, timezone: str) -> date:
    """The calendar day in ``timezone`` at the clock's instant."""
    return clock.now().astimezone(ZoneInfo(timezone)).date()


def rfc3339(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")
