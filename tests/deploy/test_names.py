"""Every variable-like name written anywhere in deploy/ (manifests, env files, comments,
README commands) is a real setting of some process, or a name the code or the Dockerfile
defines, or a variable of a third-party image: a misspelt setting in a comment or a
runbook command is caught too, not only in the manifests the other tests parse."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.catalog import DEPLOY, PROCESSES, REPO
from tests.deploy.checks import RUNTIME_ENV
from tests.deploy.dockerfile import parse

NAME = re.compile(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9]\b")
THIRD_PARTY = re.compile(r"^(POSTGRES|PG|MP|REDIS|TARGET|BUILD)[A-Z0-9]*_")
"""Variables of the postgres, redis and mailpit images, and BuildKit's build args."""


def _allowed() -> tuple[set[str], set[str]]:
    settings = {name for process in PROCESSES.values() for name in process.known_env()}
    code: set[str] = set()
    for path in [*REPO.glob("services/*/src/**/*.py"), *REPO.glob("gateway/src/**/*.py")]:
        code |= set(NAME.findall(path.read_text()))
    for dockerfile in (DEPLOY / "docker").glob("*Dockerfile"):
        parsed = parse(dockerfile)
        code |= set(parsed.global_args)
        for stage in parsed.stages:
            code |= set(stage.args) | set(stage.env)
    return settings, code


FILES = sorted(p for p in DEPLOY.rglob("*") if p.is_file()) or [DEPLOY / "README.md"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_variable_named_in_deploy_exists(path: Path) -> None:
    settings, code = _allowed()
    unknown = []
    for name in sorted(set(NAME.findall(path.read_text()))):
        if name in settings or name in code or RUNTIME_ENV.match(name) or THIRD_PARTY.match(name):
            continue
        if any(setting.endswith("_" + name) for setting in settings):
            continue  # shorthand such as DISPATCHER_HOST/HEALTH_PORT
        unknown.append(name)
    assert not unknown, (
        f"{path.relative_to(REPO)} names {', '.join(unknown)}: no setting of any process, "
        "no name in the code (misspelt?)"
    )
