"""Reference tables, read by both services and written only by the importer and seed."""

from __future__ import annotations

import sqlalchemy as sa

from rcm_kit.db import make_metadata, timestamps, uuid_pk

metadata = make_metadata(schema="ref")


payer = sa.Table(
    "payer",
    metadata,
    uuid_pk("payer_id"),
    # The X12 payer id (NM1*PR 09), unique within a tenant.
    sa.Column("payer_code", sa.String(80), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    *timestamps(),
)

billing_entity = sa.Table(
    "billing_entity",
    metadata,
    uuid_pk("billing_entity_id"),
    sa.Column("billing_entity_code", sa.String(80), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("npi", sa.String(10), nullable=True),
    sa.Column("tax_id", sa.String(20), nullable=True),
    *timestamps(),
)

facility = sa.Table(
    "facility",
    metadata,
    uuid_pk("facility_id"),
    sa.Column("facility_code", sa.String(80), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("npi", sa.String(10), nullable=True),
    *timestamps(),
)

sa.Index("ix_payer_name_id", payer.c.name, payer.c.payer_id)
sa.Index("ix_billing_entity_name_id", billing_entity.c.name, billing_entity.c.billing_entity_id)
sa.Index("ix_facility_name_id", facility.c.name, facility.c.facility_id)
