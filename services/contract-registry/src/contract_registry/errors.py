"""Domain errors shared by the contract registry's folders."""

from __future__ import annotations

from collections.abc import Sequence

from rcm_kit.errors import InvalidInput

Loc = Sequence[str | int]


class InvalidFields(InvalidInput):
    """A 422 naming several fields at once (``InvalidInput`` names one)."""

    def __init__(self, errors: Sequence[tuple[Loc, str]]) -> None:
        first_loc, first_msg = errors[0]
        super().__init__(first_loc, first_msg)
        self.errors = [{"loc": list(loc), "msg": msg} for loc, msg in errors]
        self.detail = "; ".join(f"{'.'.join(str(p) for p in loc)}: {msg}" for loc, msg in errors)


def raise_if_any(errors: Sequence[tuple[Loc, str]]) -> None:
    if errors:
        raise InvalidFields(errors)
