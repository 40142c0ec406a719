"""The one ``MetaData`` of the sweeps service and the column shapes its tables share."""

from __future__ import annotations

import sqlalchemy as sa

from rcm_kit.db import make_metadata

# No default schema: each table names its own (member, service, eligibility).
metadata = make_metadata()


def uuid_pk(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.Uuid, primary_key=True, server_default=sa.text("gen_random_uuid()"))


def timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    ]


def one_of(column: str, values: tuple[str, ...]) -> str:
    """SQL text of a CHECK that ``column`` holds one of ``values``."""
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"
