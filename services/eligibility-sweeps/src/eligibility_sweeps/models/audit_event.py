"""``eligibility.audit_event``: who read member-level data or raw X12, who changed what."""

from __future__ import annotations

from eligibility_sweeps.models.base import metadata
from rcm_kit.audit import audit_table
from rcm_kit.db import make_metadata

# ``audit_table`` builds its table in the metadata's default schema, and ours has none
# (each table names its own), so build it aside and copy it into the eligibility schema.
audit_event = audit_table(make_metadata()).to_metadata(metadata, schema="eligibility")
