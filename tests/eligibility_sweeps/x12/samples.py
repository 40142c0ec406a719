"""Where the shared X12 samples live: ``../shared/x12/samples`` beside the repository."""

from __future__ import annotations

from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "x12" / "samples"


def sample(name: str) -> str:
    # Bytes, not read_text: CRLF stays as sent: several samples use it.
    return (SAMPLES / name).read_bytes().decode("utf-8")
