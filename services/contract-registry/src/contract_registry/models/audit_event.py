"""``billing.audit_event``: who changed a contract or an alert."""

from __future__ import annotations

from contract_registry.models.base import metadata
from rcm_kit.audit import audit_table

audit_event = audit_table(metadata, schema="billing")
