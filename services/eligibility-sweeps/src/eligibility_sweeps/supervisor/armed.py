"""What a supervisor holds in memory: per tenant, each active schedule's next fire time.

The table only says *when to look*: a schedule whose time has come is fired by the
database's compare-and-set (``firing``), which reads the row itself. So a stale entry
costs at most a look that finds nothing to do (an entry too early) or a late firing
until the next change signal or resync (an entry too late).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from uuid import UUID


class ArmedSchedules:
    def __init__(self) -> None:
        self._by_tenant: dict[UUID, dict[UUID, datetime]] = {}

    def replace(self, tenant_id: UUID, schedules: Mapping[UUID, datetime]) -> None:
        """Everything the tenant's database says (a resync)."""
        self._by_tenant[tenant_id] = dict(schedules)

    def set(self, tenant_id: UUID, schedule_id: UUID, next_fire_at: datetime | None) -> None:
        """Arm a schedule at ``next_fire_at``, or disarm it (None: paused or gone)."""
        schedules = self._by_tenant.setdefault(tenant_id, {})
        if next_fire_at is None:
            schedules.pop(schedule_id, None)
        else:
            schedules[schedule_id] = next_fire_at

    def get(self, tenant_id: UUID, schedule_id: UUID) -> datetime | None:
        return self._by_tenant.get(tenant_id, {}).get(schedule_id)

    def drop_tenant(self, tenant_id: UUID) -> None:
        self._by_tenant.pop(tenant_id, None)

    def keep_tenants(self, tenant_ids: Iterable[UUID]) -> None:
        """Forget every tenant not in ``tenant_ids`` (suspended or gone)."""
        keep = set(tenant_ids)
        for tenant_id in [t for t in self._by_tenant if t not in keep]:
            del self._by_tenant[tenant_id]

    def due(self, now: datetime) -> dict[UUID, list[UUID]]:
        """Per tenant, the schedules whose time has come, earliest first."""
        found: dict[UUID, list[UUID]] = {}
        for tenant_id, schedules in self._by_tenant.items():
            ready = sorted((at, sid) for sid, at in schedules.items() if at <= now)
            if ready:
                found[tenant_id] = [sid for _, sid in ready]
        return found

    def counts(self) -> dict[UUID, int]:
        """Armed schedules per tenant (tenants with none left out)."""
        return {t: len(s) for t, s in self._by_tenant.items() if s}

    @property
    def total(self) -> int:
        return sum(len(s) for s in self._by_tenant.values())
