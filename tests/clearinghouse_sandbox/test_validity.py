"""The answers pass pyx12's validator with the 005010X279A1 maps in shared/x12.

Not every rule: those maps nest LS/2120 under the 2115 loop and do not know 5010's
repeated EB03 (shared/x12/README.md), so the ``SBX-OTHERPAYER`` 271 and multi-type
EB lines cannot be judged by them; pyx12 also takes about 0.2 s a file.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.clearinghouse_sandbox.factories import make_270
from tests.sandbox_support import SandboxClient

VALIDATE = Path(__file__).resolve().parents[2].parent / "shared" / "x12" / "validate"
JUDGED = [
    ("SBX-ACTIVE", True),
    ("SBX-INACTIVE", False),
    ("SBX-NOTFOUND", True),
    ("SBX-BADID", True),
    ("SBX-DEMOG", True),
    ("SBX-AAA42", False),
    ("SBX-999", False),
    ("SBX-TA1", False),
]


async def test_answers_are_valid_x12(sandbox: SandboxClient, tmp_path: Path) -> None:
    files = []
    for member_id, dependent in JUDGED:
        response = await sandbox.send_x12(make_270(member_id, dependent=dependent).x12)
        assert response.status_code == 200
        path = tmp_path / f"{member_id}-{'dependent' if dependent else 'subscriber'}.x12"
        path.write_text(response.text)
        files.append(str(path))

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(VALIDATE),
        *files,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()

    assert process.returncode == 0, output.decode()
