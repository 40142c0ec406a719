"""Import files for tests, written the way an operator would."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession


def write_csv(path: Path, header: Sequence[str], *rows: Sequence[Any]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_ndjson(path: Path, *records: Mapping[str, Any]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


async def count(session: AsyncSession, table: str) -> int:
    return int((await session.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one())
