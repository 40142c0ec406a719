"""Console scripts of the workspace run as real OS processes by the tests: started with
settings in their environment, logging to a file, and awaited until they answer."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent
STARTUP_SECONDS = 60


def spawn(script: str, log: Path, settings: dict[str, Any], *args: str) -> subprocess.Popen[bytes]:
    """The console script ``script`` (with ``args``) with these settings on top of this
    process's environment, logging to ``log``."""
    env = {**os.environ, "LOG_FORMAT": "console", **{k: str(v) for k, v in settings.items()}}
    with log.open("wb") as output:
        return subprocess.Popen([str(BIN / script), *args], env=env, stdout=output, stderr=output)


def read_log(log: Path) -> str:
    return log.read_text(errors="replace")


async def until_ready(
    process: subprocess.Popen[bytes], base_url: str, path: str, log: Path
) -> None:
    """Until ``path`` at ``base_url`` answers 200; fails with the log if the process exits
    or ``STARTUP_SECONDS`` pass first."""
    deadline = time.monotonic() + STARTUP_SECONDS
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"exited {process.returncode}:\n{read_log(log)}")
            try:
                if (await client.get(path)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"not ready at {base_url}{path}:\n{read_log(log)}")
