"""The Dockerfiles under deploy/docker build images that run our processes safely.

No Docker engine is needed: the Dockerfile is read (tests/deploy/dockerfile.py) and
checked against the repository (COPY sources exist and are not .dockerignored), the
catalog (commands are console scripts, ENV names are settings, HEALTHCHECK asks a route
the process has on the port it listens on) and good practice (a .dockerignore leaving
out .venv, .git and .data; a non-root USER; the virtualenv's bin/ on PATH; migrations/
where ``rcm migrate`` finds it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy import compose
from tests.deploy.catalog import DEPLOY, REPO
from tests.deploy.dockerfile import DockerIgnore, check_dockerfile, parse

FIXTURES = Path(__file__).parent / "fixtures" / "docker"
# A missing Dockerfile still yields a (failing) test: nothing is skipped silently.
DOCKERFILES = sorted(
    p for p in (DEPLOY / "docker").glob("*Dockerfile*") if not p.name.endswith(".dockerignore")
) or [DEPLOY / "docker" / "Dockerfile"]


def _compose_targets(dockerfile: Path) -> tuple[Path, set[str]]:
    """The build context and the targets deploy/compose.yaml builds from ``dockerfile``
    (the repository root and no target when compose does not build it)."""
    path = DEPLOY / "compose.yaml"
    context, targets = REPO, set()
    if path.exists():
        for service in compose.load(path)["services"].values():
            build = service.get("build")
            if not isinstance(build, dict):
                continue
            base = (path.parent / build.get("context", ".")).resolve()
            if (base / build.get("dockerfile", "Dockerfile")).resolve() == dockerfile.resolve():
                context = base
                if build.get("target"):
                    targets.add(build["target"])
    return context, targets


def test_there_is_a_dockerfile() -> None:
    assert all(p.exists() for p in DOCKERFILES), "deploy/docker/ holds no Dockerfile"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile(dockerfile: Path) -> None:
    assert dockerfile.exists(), f"{dockerfile} does not exist"
    context, targets = _compose_targets(dockerfile)
    problems = check_dockerfile(dockerfile, context, targets)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_compose_targets_exist(dockerfile: Path) -> None:
    _, targets = _compose_targets(dockerfile)
    names = {stage.name for stage in parse(dockerfile).stages}
    assert targets <= names, f"compose builds targets {sorted(targets - names)} that do not exist"


def test_the_good_example_passes() -> None:
    assert check_dockerfile(FIXTURES / "good.Dockerfile", REPO) == []


def test_the_bad_example_is_caught() -> None:
    problems = "\n".join(check_dockerfile(FIXTURES / "bad.Dockerfile", FIXTURES / "bad-context"))
    for expected in (
        "no .dockerignore",
        "COPY source 'missing.txt' does not exist",
        "no USER: the process would run as root",
        "virtualenv bin/ is not on PATH",
        "gateway takes no arguments",
        "ENV NOT_A_SETTING is not a setting of gateway",
        "EXPOSE 9000, but gateway listens on [8000]",
        "runs 'curl', which the image does not have",
        "GET /health on port 8000, a route gateway does not have",
        "rcm needs migrations/",
    ):
        assert expected in problems, f"not reported: {expected}\n{problems}"


@pytest.mark.parametrize(
    ("dockerfile", "expected"),
    [
        ('FROM python:3.11-slim\nUSER root\nCMD ["gateway"]\n', "USER root is root"),
        ('FROM python:3.11-slim\nUSER 0:0\nCMD ["gateway"]\n', "USER 0:0 is root"),
        ('FROM python:3.11-slim\nUSER app\nCMD ["gateway"]\n', "USER app is never created"),
        ("FROM python:3.11-slim\nCOPY --from=nope /x /x\n", "no such stage"),
        ("FROM python:3.11-slim\nCOPY .venv /x\n", "excluded by"),
    ],
)
def test_more_defects_are_caught(tmp_path: Path, dockerfile: str, expected: str) -> None:
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".dockerignore").write_text(".venv\n.git\n.data\n")
    (tmp_path / "Dockerfile").write_text(dockerfile)
    problems = "\n".join(check_dockerfile(tmp_path / "Dockerfile", tmp_path))
    assert expected in problems, problems


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        (".venv", ".venv/lib/x.py", True),
        ("**/.venv", "services/kit/.venv/x", True),
        ("**/.venv", ".venv/x", True),
        ("*.md\n!README.md", "README.md", False),
        ("*.md\n!README.md", "NOTES.md", True),
        ("docs/*.md", "docs/a.md", True),
        ("docs/*.md", "docs/sub/a.md", False),
        ("**/*.py[cod]", "a/b/c.pyc", True),
        ("/build", "build/x", True),
        ("deploy/env", "deploy/env/auth.env", True),
        ("tests", "services/tests/x", False),
    ],
)
def test_dockerignore_matching(tmp_path: Path, patterns: str, path: str, excluded: bool) -> None:
    (tmp_path / ".dockerignore").write_text(patterns + "\n")
    assert DockerIgnore.load(tmp_path / ".dockerignore").excluded(path) is excluded
