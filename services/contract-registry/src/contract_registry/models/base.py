"""The one ``MetaData`` of the contract registry (schema ``billing``) and shared shapes."""

from __future__ import annotations

from rcm_kit.db import make_metadata, timestamps, uuid_pk

metadata = make_metadata(schema="billing")

# The all-zero UUID stands for "all" when a nullable scope column takes part in a unique
# index, so that NULLs compare equal on every PostgreSQL version.
NIL_UUID = "00000000-0000-0000-0000-000000000000"


def one_of(column: str, values: tuple[str, ...]) -> str:
    """SQL text of a CHECK that ``column`` holds one of ``values``."""
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


__all__ = ["NIL_UUID", "metadata", "one_of", "timestamps", "uuid_pk"]
