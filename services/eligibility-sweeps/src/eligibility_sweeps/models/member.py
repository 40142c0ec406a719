"""``member.member``: patients as the host platform knows them (loaded by import)."""

from __future__ import annotations

import sqlalchemy as sa

from eligibility_sweeps.models.base import metadata, one_of, timestamps, uuid_pk

# X12 DMG03 codes: female, male, unknown.
GENDERS = ("F", "M", "U")

member = sa.Table(
    "member",
    metadata,
    uuid_pk("member_id"),
    # The host platform's medical record number (MRN): the natural key of imports.
    sa.Column("external_id", sa.String(80), nullable=False, unique=True),
    sa.Column("first_name", sa.String(100), nullable=False),
    sa.Column("last_name", sa.String(100), nullable=False),
    sa.Column("date_of_birth", sa.Date, nullable=False),
    sa.Column("gender", sa.String(1), nullable=True),
    *timestamps(),
    sa.CheckConstraint(one_of("gender", GENDERS), name="gender"),
    schema="member",
)

# The member list's order (last name, first name, id) as one index.
sa.Index("ix_member_name_id", member.c.last_name, member.c.first_name, member.c.member_id)
