"""``eligibility.control_number_sequence``: the last X12 control number handed out per
trading partner, so ISA13/GS06/ST02 are never reused after a restart or by two workers.

One counter (``kind = 'interchange'``) serves all three numbers of a real-time 270: each
interchange carries exactly one group and one transaction, so GS06 and ST02 equal ISA13
and a 999 (which names GS06/ST02) or a TA1 (which names ISA13) points at one check by
any of them. The ``group`` and ``transaction`` kinds are reserved for batch envelopes
(several groups or transactions per interchange), which nothing emits yet.
"""

from __future__ import annotations

import enum

import sqlalchemy as sa

from eligibility_sweeps.models.base import metadata, one_of
from eligibility_sweeps.models.trading_partner import trading_partner


class ControlNumberKind(enum.StrEnum):
    INTERCHANGE = "interchange"
    GROUP = "group"
    TRANSACTION = "transaction"


# ISA13 is exactly 9 digits; GS06 and ST02 allow as many, so one ceiling fits all three.
MAX_CONTROL_NUMBER = 999_999_999

control_number_sequence = sa.Table(
    "control_number_sequence",
    metadata,
    sa.Column(
        "trading_partner_id",
        sa.Uuid,
        sa.ForeignKey(trading_partner.c.trading_partner_id, ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("kind", sa.String(12), primary_key=True),
    sa.Column("last_value", sa.BigInteger, nullable=False),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.CheckConstraint(one_of("kind", tuple(ControlNumberKind)), name="kind"),
    sa.CheckConstraint(f"last_value BETWEEN 1 AND {MAX_CONTROL_NUMBER}", name="last_value"),
    schema="eligibility",
)
