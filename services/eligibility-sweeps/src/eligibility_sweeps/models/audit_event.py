"""``eligibility.audit_event``: who read member-level data or raw X12, who changed what."""

from __future__ import annotations

from eligibility_sweeps.models.base import metadata
from rcm_kit.audit import audit_table

audit_event = audit_table(metadata, schema="eligibility")
