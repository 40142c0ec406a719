"""Every table the contract registry owns; imported whole by its Alembic tree."""

from contract_registry.models.audit_event import audit_event
from contract_registry.models.base import metadata
from contract_registry.models.contract_expiry_alert import (
    LEAD_DAYS,
    AlertStatus,
    DeliveryKind,
    DeliveryStatus,
    contract_expiry_alert,
    contract_expiry_alert_delivery,
)
from contract_registry.models.fee_schedule import fee_schedule, fee_schedule_line
from contract_registry.models.payer_contract import ContractStatus, payer_contract

__all__ = [
    "LEAD_DAYS",
    "AlertStatus",
    "ContractStatus",
    "DeliveryKind",
    "DeliveryStatus",
    "audit_event",
    "contract_expiry_alert",
    "contract_expiry_alert_delivery",
    "fee_schedule",
    "fee_schedule_line",
    "metadata",
    "payer_contract",
]
