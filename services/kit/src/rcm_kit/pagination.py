"""Keyset pagination with opaque cursors bound to their filters.

Every list states an order whose last key is the row's id, so a page boundary is a
unique point and paging never repeats or skips a row, even when sort values tie.
A cursor carries the last row's sort values and a digest of the filters it was made
under; used with other filters it is refused with 422 instead of silently paging a
different list.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

import sqlalchemy as sa
from fastapi import Query
from pydantic import BaseModel

from rcm_kit.errors import InvalidInput

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=500, description="Page size, 1-500.")]
Cursor = Annotated[
    str | None, Query(description="Opaque cursor from the previous page's next_cursor.")
]
DEFAULT_LIMIT = 50


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


@dataclass(frozen=True)
class SortKey:
    """One key of a list's order. ``nulls_last`` only for ascending keys."""

    column: sa.ColumnElement[Any]
    descending: bool = False
    nulls_last: bool = False


def _tag(value: Any) -> list[Any]:
    if value is None:
        return ["n", None]
    if isinstance(value, UUID):
        return ["u", str(value)]
    if isinstance(value, datetime):
        return ["t", value.isoformat()]
    if isinstance(value, date):
        return ["d", value.isoformat()]
    if isinstance(value, bool | int | float | str):
        return ["v", value]
    raise TypeError(f"cannot put {type(value).__name__} in a cursor")


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "n": lambda _: None,
    "u": UUID,
    "t": datetime.fromisoformat,
    "d": date.fromisoformat,
    "v": lambda v: v,
}


def _untag(item: Any) -> Any:
    kind, value = item
    return _DECODERS[kind](value)


def filters_digest(filters: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        {k: v for k, v in sorted(filters.items()) if v not in (None, [], "")},
        default=str,
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_cursor(values: Sequence[Any], filters: Mapping[str, Any]) -> str:
    payload = json.dumps({"k": [_tag(v) for v in values], "f": filters_digest(filters)})
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, filters: Mapping[str, Any], width: int) -> list[Any] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        values = [_untag(item) for item in payload["k"]]
        digest = payload["f"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidInput(["query", "cursor"], "is not a cursor this list issued") from None
    if len(values) != width:
        raise InvalidInput(["query", "cursor"], "is not a cursor this list issued")
    if digest != filters_digest(filters):
        raise InvalidInput(
            ["query", "cursor"],
            "was issued for other filters; start again without a cursor",
        )
    return values


def _after(keys: Sequence[SortKey], values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """Rows strictly after ``values`` in the order ``keys`` (NULLs last where asked)."""
    key, rest = keys[0], keys[1:]
    value = values[0]
    column = key.column
    if key.nulls_last:
        if value is None:
            # Past the non-null rows already: only later NULL rows, decided by the rest.
            return sa.and_(column.is_(None), _after(rest, values[1:])) if rest else sa.false()
        strictly = sa.or_(column > value, column.is_(None))
    else:
        strictly = column < value if key.descending else column > value
    if not rest:
        return strictly
    return sa.or_(strictly, sa.and_(column == value, _after(rest, values[1:])))


def paginate(
    query: sa.Select[Any],
    keys: Sequence[SortKey],
    *,
    cursor: str | None,
    filters: Mapping[str, Any],
    limit: int,
) -> sa.Select[Any]:
    """``query`` ordered by ``keys``, starting after ``cursor``, fetching one extra row."""
    values = decode_cursor(cursor, filters, len(keys))
    if values is not None:
        query = query.where(_after(keys, values))
    order = []
    for key in keys:
        expression = key.column.desc() if key.descending else key.column.asc()
        order.append(expression.nulls_last() if key.nulls_last else expression)
    return query.order_by(*order).limit(limit + 1)


def page_of(
    rows: Sequence[Any],
    *,
    limit: int,
    key_values: Any,
    filters: Mapping[str, Any],
) -> tuple[list[Any], str | None]:
    """Split the fetched rows into the page and the cursor for the next one."""
    items = list(rows[:limit])
    if len(rows) <= limit:
        return items, None
    return items, encode_cursor(key_values(items[-1]), filters)
