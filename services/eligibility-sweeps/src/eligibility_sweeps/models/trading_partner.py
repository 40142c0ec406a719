"""``eligibility.trading_partner`` and ``eligibility.trading_partner_payer``: where each
payer's 270s go, how to authenticate there, and the per-partner and per-payer limits.

Secrets never sit here in clear: the outbound password or token is Fernet ciphertext
(``SECRETS_KEY``), the inbound credential only a SHA-256 digest.
"""

from __future__ import annotations

import enum

import sqlalchemy as sa

from eligibility_sweeps.models.base import metadata, one_of, timestamps, uuid_pk
from rcm_reference.models import payer


class Transport(enum.StrEnum):
    CORE_MIME = "core-mime"
    X12_HTTP = "x12-http"


class AuthType(enum.StrEnum):
    NONE = "none"
    BASIC = "basic"
    BEARER = "bearer"


USAGE_INDICATORS = ("T", "P")
DEFAULT_TIMEOUT_SECONDS = 20

trading_partner = sa.Table(
    "trading_partner",
    metadata,
    uuid_pk("trading_partner_id"),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("transport", sa.String(10), nullable=False),
    sa.Column("endpoint_url", sa.String(2000), nullable=False),
    sa.Column("auth_type", sa.String(10), nullable=False, server_default=sa.text("'none'")),
    sa.Column("auth_username", sa.String(200), nullable=True),
    # Fernet token (URL-safe base64 text) of the basic password or the bearer token.
    sa.Column("auth_secret_encrypted", sa.Text, nullable=True),
    sa.Column("sender_id", sa.String(15), nullable=False),
    sa.Column("receiver_id", sa.String(15), nullable=False),
    sa.Column("usage_indicator", sa.String(1), nullable=False, server_default=sa.text("'P'")),
    sa.Column(
        "timeout_seconds",
        sa.SmallInteger,
        nullable=False,
        server_default=sa.text(str(DEFAULT_TIMEOUT_SECONDS)),
    ),
    sa.Column("max_requests_per_second", sa.Double, nullable=True),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    # Hex SHA-256 of a 32-byte random token: a fast hash suffices for that much entropy.
    sa.Column("inbound_credential_hash", sa.String(64), nullable=True),
    sa.Column("inbound_credential_created_at", sa.DateTime(timezone=True), nullable=True),
    *timestamps(),
    sa.UniqueConstraint("name"),
    sa.CheckConstraint(one_of("transport", tuple(Transport)), name="transport"),
    sa.CheckConstraint(one_of("auth_type", tuple(AuthType)), name="auth_type"),
    sa.CheckConstraint(
        "(auth_type = 'none' AND auth_username IS NULL AND auth_secret_encrypted IS NULL)"
        " OR (auth_type = 'basic' AND auth_username IS NOT NULL"
        " AND auth_secret_encrypted IS NOT NULL)"
        " OR (auth_type = 'bearer' AND auth_username IS NULL"
        " AND auth_secret_encrypted IS NOT NULL)",
        name="auth_fields",
    ),
    sa.CheckConstraint(one_of("usage_indicator", USAGE_INDICATORS), name="usage_indicator"),
    sa.CheckConstraint("timeout_seconds BETWEEN 1 AND 60", name="timeout_seconds"),
    sa.CheckConstraint("max_requests_per_second > 0", name="max_requests_per_second"),
    schema="eligibility",
)

# A payer routed through a partner, with the payer's own published limits. Routing must
# be unambiguous (at most one ACTIVE partner per payer); ``active`` lives on the partner,
# so the service enforces that under an advisory lock rather than an index here.
trading_partner_payer = sa.Table(
    "trading_partner_payer",
    metadata,
    sa.Column(
        "trading_partner_id",
        sa.Uuid,
        sa.ForeignKey(trading_partner.c.trading_partner_id, ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("payer_id", sa.Uuid, sa.ForeignKey(payer.c.payer_id), primary_key=True),
    sa.Column("max_requests_per_second", sa.Double, nullable=True),
    sa.Column("daily_request_cap", sa.Integer, nullable=True),
    sa.CheckConstraint("max_requests_per_second > 0", name="max_requests_per_second"),
    sa.CheckConstraint("daily_request_cap > 0", name="daily_request_cap"),
    schema="eligibility",
)

sa.Index("ix_trading_partner_payer_payer_id", trading_partner_payer.c.payer_id)
