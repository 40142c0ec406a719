"""SQL helpers shared by the contract registry's repositories: the scope expression of
its unique indexes (NULL scope columns coalesced to the nil UUID) and constraint checks."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from contract_registry.models.base import NIL_UUID


def nil_if_null(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """``coalesce(column, nil uuid)``: the exact expression of the scope unique indexes."""
    return sa.func.coalesce(column, sa.text(f"'{NIL_UUID}'::uuid"))


def violates(error: IntegrityError, constraint: str) -> bool:
    """Whether ``error`` is a violation of the constraint or unique index ``constraint``."""
    cause = getattr(error.orig, "__cause__", None)
    name = getattr(cause, "constraint_name", None)  # asyncpg names it
    return name == constraint if name is not None else constraint in str(error.orig)
