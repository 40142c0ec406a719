"""``eligibility.idempotency_key``: the first answer to a POST sent with an
``Idempotency-Key``, replayed for 24 hours.

Keyed by the caller (``sub``), the route and the key, so two clients that happen to pick
the same key never see each other's answers. A row with no ``status_code`` is a request
still in flight: a concurrent retry waits on it rather than creating a second resource.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from eligibility_sweeps.models.base import metadata

idempotency_key = sa.Table(
    "idempotency_key",
    metadata,
    sa.Column("scope", sa.String(300), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    # Hex SHA-256 of the request body: the same key with another body is refused.
    sa.Column("request_digest", sa.String(64), nullable=False),
    sa.Column("status_code", sa.SmallInteger, nullable=True),
    sa.Column("response", JSONB, nullable=True),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    schema="eligibility",
)

sa.Index("ix_idempotency_key_created_at", idempotency_key.c.created_at)
