"""The one ``MetaData`` of the sweeps service and the column shapes its tables share."""

from __future__ import annotations

from rcm_kit.db import make_metadata, timestamps, uuid_pk

__all__ = ["metadata", "one_of", "timestamps", "uuid_pk"]

# No default schema: each table names its own (member, service, eligibility).
metadata = make_metadata()


def one_of(column: str, values: tuple[str, ...]) -> str:
    """SQL text of a CHECK that ``column`` holds one of ``values``."""
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"
