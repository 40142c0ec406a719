"""Checks shared by the compose, Dockerfile and Kubernetes tests.

Each check returns a list of problems (strings naming the file, the object and what is
wrong), empty when all is well, so that a test can report every defect at once and the
fixture tests can assert that a bad example is caught with the right message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tests.deploy.catalog import (
    LOOPBACK,
    Bound,
    Invocation,
    Process,
    bound_listeners,
    has_route,
    route_paths,
    secret_in_value,
    validation_problems,
)

GRACE_MARGIN_SECONDS = 5
"""SIGKILL must come at least this long after the process's own shutdown grace: after
the grace it still cancels what is left, closes its pools and exits."""

RUNTIME_ENV = re.compile(
    r"^(PATH|HOME|LANG|LC_[A-Z]+|TZ|VIRTUAL_ENV|PYTHON[A-Z_]*|UV_[A-Z_]+|PIP_[A-Z_]+|"
    r"SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE|TMPDIR)$"
)
"""Variables for the interpreter or the image, not settings of a process."""

Env = Mapping[str, str | None]
"""A container's environment: None means provided but the value is not in the files
(a Secret, an operator's copy of an example file, a variable of the host)."""


# --------------------------------------------------------------------------- env


def check_env(
    where: str,
    invocation: Invocation,
    env: Env,
    origins: Mapping[str, str],
    *,
    own: set[str] | None = None,
) -> list[str]:
    """Every variable a deployment file gives (``own``: the names it sets itself, not
    the image's) is a setting of the process; every setting a container needs is set;
    the whole environment passes the process's own validation."""
    process = invocation.process
    assert process is not None
    problems = []
    known = process.known_env()
    for name in sorted(env if own is None else own):
        if name not in known and not RUNTIME_ENV.match(name):
            problems.append(
                f"{where}: {name} (from {origins.get(name, '?')}) is not a setting of "
                f"{invocation.label} ({process.settings_path} reads "
                f"{', '.join(sorted(known))})"
            )
    for name, why in sorted(process.required_env().items()):
        if name not in env:
            problems.append(f"{where}: {invocation.label} needs {name}, which is not set: {why}")
    for listener in process.listeners:
        value = env.get(listener.host_setting)
        if value is not None and LOOPBACK.match(value):
            problems.append(
                f"{where}: {listener.host_setting}={value} (from "
                f"{origins.get(listener.host_setting, '?')}): the process would listen on "
                "the container's loopback only; use 0.0.0.0"
            )
    for problem in validation_problems(process, env):
        problems.append(f"{where}: {invocation.label} would refuse to start: {problem}")
    return problems


def check_secrets(where: str, values: Mapping[str, str | None]) -> list[str]:
    problems = []
    for name, value in sorted(values.items()):
        problem = secret_in_value(name, value)
        if problem:
            problems.append(f"{where}: {problem}")
    return problems


# --------------------------------------------------------------------------- HTTP targets


@dataclass(frozen=True)
class HttpTarget:
    host: str
    port: int | None
    path: str
    port_variable: str | None = None
    port_default: int | None = None

    def resolved_port(self, env: Env) -> int | None:
        if self.port_variable is not None:
            value = env.get(self.port_variable)
            if value is not None and str(value).isdigit():
                return int(value)
            return self.port_default
        if self.port is not None:
            return self.port
        return 80


_PLAIN_URL = re.compile(
    r"https?://(?P<host>\[[^\]]+\]|[A-Za-z0-9_.\-]+)(?::(?P<port>\d+))?(?P<path>/[^\s'\"]*)?"
)
_PYTHON_ENV_URL = re.compile(
    r"""https?://(?P<host>[A-Za-z0-9_.\-]+):['"]\s*\+\s*os\.environ"""
    r"""(?:\.get\(\s*['"](?P<var>\w+)['"]\s*(?:,\s*['"](?P<default>\d+)['"])?\s*\)"""
    r"""|\[\s*['"](?P<var2>\w+)['"]\s*\])\s*\+\s*['"](?P<path>/[^'"]*)['"]"""
)
_SHELL_ENV_URL = re.compile(
    r"https?://(?P<host>[A-Za-z0-9_.\-]+):\$\{?(?P<var>[A-Za-z_]\w*)(?::?-(?P<default>\d+))?\}?"
    r"(?P<path>/[^\s'\"]*)?"
)


def http_targets(argv: list[str]) -> list[HttpTarget]:
    """The URLs a health check command asks for, including ports read from the
    environment (``os.environ.get('PORT', '8000')`` in Python, ``${PORT:-8000}`` in sh)."""
    text = " ".join(argv)
    targets: list[HttpTarget] = []
    consumed: list[tuple[int, int]] = []
    for match in _PYTHON_ENV_URL.finditer(text):
        targets.append(
            HttpTarget(
                match["host"],
                None,
                match["path"],
                match["var"] or match["var2"],
                int(match["default"]) if match["default"] else None,
            )
        )
        consumed.append(match.span())
    for match in _SHELL_ENV_URL.finditer(text):
        if any(a <= match.start() < b for a, b in consumed):
            continue
        targets.append(
            HttpTarget(
                match["host"],
                None,
                match["path"] or "/",
                match["var"],
                int(match["default"]) if match["default"] else None,
            )
        )
        consumed.append(match.span())
    for match in _PLAIN_URL.finditer(text):
        if any(a <= match.start() < b for a, b in consumed):
            continue
        targets.append(
            HttpTarget(
                match["host"], int(match["port"]) if match["port"] else None, match["path"] or "/"
            )
        )
    return targets


def check_route(
    where: str, process: Process, env: Env, port: int | None, path: str, *, what: str
) -> list[str]:
    """``GET path`` on ``port`` reaches a route of the process's listener on that port."""
    bounds = bound_listeners(process, env)
    matching = [bound for bound in bounds if bound.port == port]
    listening = ", ".join(f"{b.listener.port_setting}={b.port}" for b in bounds) or "nothing"
    if not matching:
        return [f"{where}: {what} asks port {port}, but {process.script} listens on {listening}"]
    bound = matching[0]
    if not bound.http:
        return [
            f"{where}: {what} asks HTTP on port {port}, which is {process.script}'s {bound.listener.name} (not HTTP)"
        ]
    if not has_route(process, bound.listener, path):
        return [
            f"{where}: {what} asks GET {path} on port {port}, a route {process.script} does not "
            f"have there (its routes: {', '.join(route_paths(process, bound.listener))})"
        ]
    return []


def check_healthcheck_command(
    where: str, process: Process, env: Env, argv: list[str], *, available: set[str]
) -> list[str]:
    """A container health check: its program exists in the image and its URL is a
    route of the process on one of its ports, asked on loopback."""
    problems = []
    program = argv[0] if argv else ""
    if program in ("/bin/sh", "sh") and len(argv) > 2:
        program = argv[2].split()[0] if argv[2].split() else ""
    if program.rsplit("/", 1)[-1] not in available:
        problems.append(
            f"{where}: the health check runs {program!r}, which the image does not have "
            f"(it has {', '.join(sorted(available))})"
        )
    targets = http_targets(argv)
    if not targets:
        problems.append(f"{where}: cannot find the URL the health check asks for in {argv}")
    for target in targets:
        if not LOOPBACK.match(target.host) and target.host != "0.0.0.0":
            problems.append(
                f"{where}: the health check asks {target.host}, not the container itself"
            )
        problems += check_route(
            where, process, env, target.resolved_port(env), target.path, what="the health check"
        )
    return problems


def grace_problem(where: str, process: Process, env: Env, allowed: float, what: str) -> str | None:
    grace = process.grace_seconds(env)
    if grace is None:
        return None
    if allowed < grace + GRACE_MARGIN_SECONDS:
        return (
            f"{where}: {what} is {allowed:g} s, but {process.script} may take {grace:g} s to "
            f"stop after SIGTERM (then cleans up): give at least {grace + GRACE_MARGIN_SECONDS:g} s"
        )
    return None


# --------------------------------------------------------------------------- references


@dataclass(frozen=True)
class Peer:
    """Something a URL or host setting can name: a compose service or a k8s Service."""

    name: str
    ports: Mapping[int, Bound | None]
    """Port it answers on -> the listener behind it (None: not one of ours)."""
    ours: bool
    ports_known: bool = True
    """False for a third-party container of compose (its ports are its image's)."""


def check_references(
    where: str,
    process: Process,
    env: Env,
    peers: Mapping[str, Peer],
    *,
    short_names: tuple[str, ...] = (),
) -> list[str]:
    """URL and host settings that name another container (a single-label host, or a
    cluster-local ``name.namespace.svc...``) name one that exists, on a port it serves,
    and, for one of our HTTP processes, a path it routes."""
    problems = []
    names = process.known_env()
    for variable, value in sorted(env.items()):
        if value is None or variable not in names:
            continue
        if "://" in value:
            try:
                parts = urlsplit(value)
                host, port = parts.hostname, parts.port
            except ValueError:
                continue
            default_port = {"http": 80, "https": 443, "redis": 6379, "rediss": 6379}.get(
                parts.scheme.split("+")[0], 5432 if parts.scheme.startswith("postgres") else None
            )
            port = port or default_port
            path = parts.path or "/"
        elif variable.endswith("_HOST") and not any(
            listener.host_setting == variable for listener in process.listeners
        ):
            host, path = value, None
            port_variable = variable[: -len("_HOST")] + "_PORT"
            raw_port = env.get(port_variable)
            port = int(raw_port) if raw_port and raw_port.isdigit() else None
        else:
            continue
        if not host or LOOPBACK.match(host) or host == "0.0.0.0":
            continue
        label = host.split(".")[0]
        local = (
            "." not in host
            or host.endswith((".svc", ".svc.cluster.local"))
            or any(host == f"{n}.{suffix}" for n in peers for suffix in short_names)
        )
        if not local:
            continue  # somewhere outside: nothing to check it against
        peer = peers.get(label)
        if peer is None:
            problems.append(
                f"{where}: {variable}={value} names {label!r}, which does not exist "
                f"(known: {', '.join(sorted(peers))})"
            )
            continue
        if port is None or not peer.ports_known:
            continue
        if port not in peer.ports:
            problems.append(
                f"{where}: {variable}={value}: {label} serves port(s) "
                f"{', '.join(str(p) for p in sorted(peer.ports)) or 'none'}, not {port}"
            )
            continue
        bound = peer.ports[port]
        if (
            bound is not None
            and bound.http
            and path
            and path != "/"
            and not has_route(bound.process, bound.listener, path, method=None)
        ):
            problems.append(
                f"{where}: {variable}={value}: {bound.process.script} has no route {path}"
            )
    return problems


def parse_duration(value: Any) -> float:
    """Compose durations: ``45s``, ``1m30s``, ``500ms``, or a number of seconds."""
    if isinstance(value, int | float):
        return float(value)
    total = 0.0
    matched = False
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(value)):
        matched = True
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}[unit]
    if not matched:
        raise ValueError(f"not a duration: {value!r}")
    return total
