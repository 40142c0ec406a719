"""Static checks of a compose file against the code (no Docker engine needed).

For every service built from our Dockerfile: its command (or its image's) is a console
script, every variable it gets (``environment`` and ``env_file``, where ``x.env`` means
the committed ``x.env.example``: the real files are operator copies) is a setting of
that process, the settings a container needs are set and pass the process's own
validation, the health check asks a route the process has on the port it listens on,
``stop_grace_period`` outlasts the process's shutdown grace, published ports are ports
the process listens on, and URLs naming another service name one that exists on a port
it serves. For every service: ``depends_on`` names services that exist (and have a
health check when waited on as healthy); and no committed value looks like a secret.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.catalog import (
    SECRET_NAME,
    Invocation,
    bound_listeners,
    console_scripts,
    parse_env_file,
    resolve_command,
)
from tests.deploy.checks import (
    Peer,
    check_env,
    check_healthcheck_command,
    check_references,
    check_secrets,
    grace_problem,
    parse_duration,
)
from tests.deploy.dockerfile import Dockerfile, Stage, has_package, parse, programs

DEFAULT_STOP_GRACE_SECONDS = 10.0
UNSUPPORTED_TOP_LEVEL = {"include"}
UNSUPPORTED_SERVICE_KEYS = {"extends"}
"""Keys that would change a service's command or environment in ways not read here."""
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise ValueError(f"{path}: no services")
    return data


def _interpolate(value: str) -> str | None:
    """Compose's interpolation: ``${VAR:-default}`` gives the default; ``${VAR}``,
    ``$VAR``, ``${VAR:?error}`` and ``${VAR:+alt}`` depend on the host (None: unknown);
    ``$$`` is a literal $."""
    unknown = False

    def replace(match: re.Match[str]) -> str:
        nonlocal unknown
        if match.group(0) == "$$":
            return "$"
        if match.group("op") in (":-", "-"):
            return match.group("word")
        unknown = True
        return ""

    result = re.sub(
        r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?+])(?P<word>[^}]*))?\}|\$(?P<bare>[A-Za-z_]\w*)",
        replace,
        value,
    )
    return None if unknown else result


@dataclass
class ServiceEnv:
    values: dict[str, str | None] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    inline: dict[str, str | None] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def env_file_path(base: Path, entry: str) -> Path | None:
    """The committed file behind an ``env_file`` entry: ``x.env.example`` for ``x.env``."""
    path = (base / entry).resolve()
    example = path.with_name(path.name + ".example")
    if example.exists():
        return example
    if path.exists():
        return path
    return None


def service_env(base: Path, name: str, service: dict[str, Any]) -> ServiceEnv:
    result = ServiceEnv()
    entries = service.get("env_file") or []
    if isinstance(entries, str):
        entries = [entries]
    for entry in entries:
        required = True
        if isinstance(entry, dict):
            required = entry.get("required", True)
            entry = entry["path"]
        path = env_file_path(base, entry)
        if path is None:
            if required:
                result.problems.append(
                    f"service {name}: env_file {entry} has neither {entry} nor "
                    f"{entry}.example committed"
                )
            continue
        result.files.append(path)
        try:
            values = parse_env_file(path)
        except ValueError as error:
            result.problems.append(f"service {name}: {error}")
            continue
        for key, value in values.items():
            # An example's secret is a placeholder the operator replaces: provided, value unknown.
            result.values[key] = None if SECRET_NAME.search(key) else value
            result.origins[key] = str(path.name)
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        pairs: dict[str, Any] = {}
        for item in environment:
            key, sep, value = str(item).partition("=")
            pairs[key] = value if sep else None
        environment = pairs
    for key, value in environment.items():
        text = (
            None
            if value is None
            else _interpolate(str(value).lower() if isinstance(value, bool) else str(value))
        )
        result.values[key] = text
        result.inline[key] = text
        result.origins[key] = "environment"
    return result


def _argv(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


def _healthcheck(service: dict[str, Any], stage: Stage | None) -> list[str] | None:
    """The effective health check command (compose's, else the image's), or None."""
    check = service.get("healthcheck")
    if check is not None:
        if check.get("disable"):
            return None
        test = check.get("test")
        if test is not None:
            if isinstance(test, str):
                return ["/bin/sh", "-c", test]
            if test[0] == "NONE":
                return None
            if test[0] == "CMD-SHELL":
                return ["/bin/sh", "-c", " ".join(test[1:])]
            if test[0] == "CMD":
                return list(test[1:])
            return list(test)
    if stage is not None:
        healthcheck = stage.effective_healthcheck()
        if healthcheck is not None:
            return healthcheck.argv
    return None


def _container_ports(service: dict[str, Any]) -> list[int]:
    ports = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            ports.append(int(entry["target"]))
        else:
            ports.append(int(str(entry).split("/")[0].rsplit(":", 1)[-1]))
    return ports


@dataclass
class Resolved:
    name: str
    service: dict[str, Any]
    dockerfile: Dockerfile | None
    stage: Stage | None
    env: ServiceEnv
    invocation: Invocation | None

    @property
    def ours(self) -> bool:
        return self.dockerfile is not None


def resolve_services(path: Path, data: dict[str, Any]) -> tuple[dict[str, Resolved], list[str]]:
    base = path.parent
    problems: list[str] = []
    dockerfiles: dict[Path, Dockerfile] = {}
    built_images: dict[str, tuple[Dockerfile, Stage]] = {}
    resolved: dict[str, Resolved] = {}
    for name, service in data["services"].items():
        dockerfile = stage = None
        build = service.get("build")
        if build is not None:
            if isinstance(build, str):
                build = {"context": build}
            context = (base / build.get("context", ".")).resolve()
            dockerfile_path = (context / build.get("dockerfile", "Dockerfile")).resolve()
            if not dockerfile_path.exists():
                problems.append(
                    f"service {name}: build.dockerfile {dockerfile_path} does not exist"
                )
            else:
                if dockerfile_path not in dockerfiles:
                    dockerfiles[dockerfile_path] = parse(dockerfile_path)
                dockerfile = dockerfiles[dockerfile_path]
                try:
                    stage = (
                        dockerfile.stage(build["target"])
                        if build.get("target")
                        else dockerfile.last
                    )
                except KeyError as error:
                    problems.append(f"service {name}: {error.args[0]}")
                    stage = dockerfile.last
                if service.get("image"):
                    built_images[service["image"]] = (dockerfile, stage)
        resolved[name] = Resolved(
            name, service, dockerfile, stage, service_env(base, name, service), None
        )
    for item in resolved.values():
        image = item.service.get("image")
        if item.dockerfile is None and image in built_images:
            item.dockerfile, item.stage = built_images[image]
        if item.ours:
            assert item.stage is not None
            entrypoint = _argv(item.service.get("entrypoint"))
            command = _argv(item.service.get("command"))
            if entrypoint is None:
                entrypoint = item.stage.effective_entrypoint() or []
                if command is None:
                    command = item.stage.effective_cmd() or []
            item.invocation = resolve_command([*entrypoint, *(command or [])])
    return resolved, problems


def _image_settings(item: Resolved) -> dict[str, str | None]:
    """The image's ENV that the process reads (values for the checks, not the
    service's own variables)."""
    assert item.stage is not None
    assert item.invocation is not None
    assert item.invocation.process
    known = item.invocation.process.known_env()
    return {k: v for k, v in item.stage.effective_env().items() if k in known}


def check_compose(path: Path) -> list[str]:
    name = path.name
    try:
        data = load(path)
    except (ValueError, yaml.YAMLError) as error:
        return [f"{name}: {error}"]
    resolved, problems = resolve_services(path, data)
    problems = [f"{name}: {p}" for p in problems]
    for key in sorted(set(data) & UNSUPPORTED_TOP_LEVEL):
        problems.append(
            f"{name}: {key}: not supported by tests/deploy/compose.py (extend it first)"
        )
    for item in resolved.values():
        for key in sorted(set(item.service) & UNSUPPORTED_SERVICE_KEYS):
            problems.append(
                f"{name} service {item.name}: {key}: not supported by tests/deploy/compose.py"
            )
    scripts = set(console_scripts())

    peers: dict[str, Peer] = {}
    for item in resolved.values():
        ports: dict[int, Any] = {}
        if item.ours and item.invocation and item.invocation.process:
            env = {**_image_settings(item), **item.env.values}
            ports = {bound.port: bound for bound in bound_listeners(item.invocation.process, env)}
        ours = bool(item.ours and item.invocation and item.invocation.process)
        peers[item.name] = Peer(item.name, ports, ours, ports_known=ours)
        for alias in _aliases(item.service):
            peers[alias] = peers[item.name]

    for item in resolved.values():
        where = f"{name} service {item.name}"
        problems += [f"{name}: {p}" for p in item.env.problems]
        problems += check_secrets(where, item.env.inline)
        for dependency, condition in _depends_on(item.service).items():
            if dependency not in resolved:
                problems.append(f"{where}: depends_on {dependency}, which is not a service")
                continue
            if condition not in CONDITIONS:
                problems.append(
                    f"{where}: depends_on {dependency}: unknown condition {condition!r}"
                )
            if (
                condition == "service_healthy"
                and _healthcheck(resolved[dependency].service, resolved[dependency].stage) is None
            ):
                problems.append(
                    f"{where}: waits for {dependency} to be healthy, but {dependency} has no health check"
                )
        if not item.ours:
            continue
        invocation = item.invocation
        assert invocation is not None
        assert item.stage is not None
        assert item.dockerfile is not None
        if invocation.process is None or invocation.problem:
            problems.append(f"{where}: command {list(invocation.argv)}: {invocation.problem}")
            if invocation.process is None:
                continue
        process = invocation.process
        restart = str(item.service.get("restart", "no"))
        if not process.listeners and restart in ("always", "unless-stopped"):
            problems.append(
                f"{where}: {invocation.label} is a one-shot, but restart: {restart} runs it "
                "again and again"
            )
        env = {**_image_settings(item), **item.env.values}
        origins = {
            **{k: f"the image's ENV ({item.stage.label})" for k in _image_settings(item)},
            **item.env.origins,
        }
        problems += check_env(where, invocation, env, origins, own=set(item.env.values))
        healthcheck = _healthcheck(item.service, item.stage)
        long_running = bool(process.listeners)
        if healthcheck is not None:
            problems += check_healthcheck_command(
                f"{where} healthcheck",
                process,
                env,
                healthcheck,
                available=programs(item.dockerfile, item.stage, scripts),
            )
        elif long_running and any(listener.app for listener in process.listeners):
            problems.append(f"{where}: no health check (neither in compose nor in the image)")
        if long_running:
            allowed = parse_duration(
                item.service.get("stop_grace_period", DEFAULT_STOP_GRACE_SECONDS)
            )
            problem = grace_problem(where, process, env, allowed, "stop_grace_period")
            if problem:
                problems.append(problem)
        listening = {bound.port for bound in bound_listeners(process, env)}
        for port in _container_ports(item.service):
            if port not in listening:
                problems.append(
                    f"{where}: publishes container port {port}, but {process.script} listens on {sorted(listening)}"
                )
        problems += check_references(where, process, env, peers)
        for package in process.needs_packages:
            if not has_package(item.dockerfile, package):
                problems.append(
                    f"{where}: {process.script} needs {package}, which the image does not "
                    "install (a dev-only dependency; the Dockerfile syncs with --no-dev)"
                )

    used = {path for item in resolved.values() for path in item.env.files}
    for example in sorted((path.parent / "env").glob("*.env.example")):
        if example.resolve() not in used:
            problems.append(f"{name}: {example.name} is read by no service")
        problems += check_secrets(f"{example.name}", parse_env_file(example))
    return problems


def _aliases(service: dict[str, Any]) -> list[str]:
    aliases: list[str] = []
    networks = service.get("networks")
    if isinstance(networks, dict):
        for config in networks.values():
            if isinstance(config, dict):
                aliases += config.get("aliases") or []
    if service.get("hostname"):
        aliases.append(service["hostname"])
    return aliases


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        return dict.fromkeys(depends, "service_started")
    return {k: (v or {}).get("condition", "service_started") for k, v in depends.items()}
