"""``eligibility.inbound_file``: every 271, 999 or TA1 a partner delivered later.

Kept whether or not it matched a check, so the operator can read what an unmatched or
unreadable file said. The digest makes a second delivery of the same bytes a no-op.
"""

from __future__ import annotations

import enum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from eligibility_sweeps.models.base import metadata, one_of, uuid_pk
from eligibility_sweeps.models.trading_partner import trading_partner


class InboundOutcome(enum.StrEnum):
    MATCHED = "MATCHED"
    UNMATCHED = "UNMATCHED"
    UNREADABLE = "UNREADABLE"


inbound_file = sa.Table(
    "inbound_file",
    metadata,
    uuid_pk("inbound_file_id"),
    sa.Column(
        "trading_partner_id",
        sa.Uuid,
        sa.ForeignKey(trading_partner.c.trading_partner_id, ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("content_type", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),
    # Hex SHA-256 of the X12 payload: the same file twice is one row.
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("outcome", sa.String(10), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("check_ids", ARRAY(sa.Uuid), nullable=False, server_default="{}"),
    sa.CheckConstraint(one_of("outcome", tuple(InboundOutcome)), name="outcome"),
    schema="eligibility",
)

sa.Index("ix_inbound_file_received_at", inbound_file.c.received_at)
