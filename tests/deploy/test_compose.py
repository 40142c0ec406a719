"""deploy/compose.yaml runs our processes as the code expects (no Docker engine needed).

What is checked, per service built from our Dockerfile: the command is a console
script; every variable from ``environment`` and ``env_file`` (``x.env`` read as the
committed ``x.env.example``) is a setting of that process; the settings a container
must set are set and pass the process's own validation; the health check (compose's or
the image's) asks a route the process serves on the port it listens on, with a program
the image has; ``stop_grace_period`` outlasts the process's shutdown grace; published
ports are ports it listens on; URLs and hosts naming another service name one that
exists, on a port and path it serves; dev-only packages the process needs are in the
image. Per service: ``depends_on`` is consistent. Overall: no committed value looks
like a secret, every env example is used and its operator copy is git-ignored.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.deploy import compose
from tests.deploy.catalog import DEPLOY, REPO, SERVICE_SCRIPTS

COMPOSE = DEPLOY / "compose.yaml"
FIXTURES = Path(__file__).parent / "fixtures" / "compose"


def test_compose_file_exists_and_parses() -> None:
    assert COMPOSE.exists(), "deploy/compose.yaml does not exist"
    data = compose.load(COMPOSE)
    assert data["services"]


def test_compose_matches_the_code() -> None:
    problems = compose.check_compose(COMPOSE)
    assert not problems, "\n".join(problems)


def test_every_service_of_ours_runs_a_console_script() -> None:
    resolved, problems = compose.resolve_services(COMPOSE, compose.load(COMPOSE))
    assert not problems, "\n".join(problems)
    ours = {name: item for name, item in resolved.items() if item.ours}
    assert ours, "no service is built from our Dockerfile"
    scripts = {
        item.invocation.process.script
        for item in ours.values()
        if item.invocation and item.invocation.process
    }
    for script in (*SERVICE_SCRIPTS, "rcm"):
        assert script in scripts, f"compose runs no {script}"


# A missing directory still yields a (failing) test: nothing is skipped silently.
ENV_EXAMPLES = sorted((DEPLOY / "env").glob("*.env.example")) or [DEPLOY / "env" / "(none)"]


@pytest.mark.parametrize("example", ENV_EXAMPLES, ids=lambda p: p.name)
def test_operator_copies_of_env_examples_are_git_ignored(example: Path) -> None:
    assert example.exists(), "deploy/env holds no *.env.example"
    copy = example.with_name(example.name.removesuffix(".example"))
    result = subprocess.run(
        ["git", "check-ignore", "-q", str(copy.relative_to(REPO))],
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, (
        f"{copy.relative_to(REPO)} (the operator's copy, with real secrets) is not "
        "git-ignored: add deploy/env/*.env to .gitignore"
    )


def test_the_good_example_passes() -> None:
    assert compose.check_compose(FIXTURES / "good" / "compose.yaml") == []


def test_the_bad_example_is_caught() -> None:
    problems = "\n".join(compose.check_compose(FIXTURES / "bad" / "compose.yaml"))
    for expected in (
        "service sweeps-worker: NOT_A_SETTING (from environment) is not a setting of sweeps-worker",
        "service sweeps-worker: sweeps-worker needs REDIS_URL, which is not set",
        "SWEEPS_WORKER_HOST=127.0.0.1 (from environment): the process would listen on the container's loopback",
        "SWEEP_RETRY_ATTEMPTS: Input should be less than or equal to 10",
        "the health check asks GET /readyz on port 9104, a route sweeps-worker does not have",
        "stop_grace_period is 10 s, but sweeps-worker may take 30 s",
        "depends_on missing, which is not a service",
        "waits for redis to be healthy, but redis has no health check",
        "DATABASE_URL embeds a password that is not an obvious placeholder",
        "names 'db', which does not exist",
        "service gateway: command ['python', '-m', 'gateway.app']: 'python' is not a console script",
        "service sink: publishes container port 2525, but rcm-smtp-sink listens on [1025, 8025]",
        "rcm-smtp-sink needs aiosmtpd, which the image does not install",
        "service sandbox: SANDBOX_TOKEN holds a value that is not an obvious placeholder",
        "sweeps-worker serves port(s) 9104, not 8001",
        "unused.env.example is read by no service",
        "worker.env.example: JWT_SECRET holds a value that is not an obvious placeholder",
        "service migrate: extends: not supported",
        "service migrate: rcm migrate is a one-shot, but restart: unless-stopped",
    ):
        assert expected in problems, f"not reported: {expected}\n{problems}"
