"""What the deployment files must agree with, read from the code.

* ``console_scripts()``: every ``[project.scripts]`` entry of every workspace member.
* ``PROCESSES``: one small table, console script -> the process it starts: its settings
  class, the sockets it listens on (a host setting, a port setting and, for HTTP, the
  factory of the real ASGI app it serves there) and its shutdown grace. That link lives
  in code (``main()`` calls ``load_settings(SomeSettings)`` and ``serve(app, host=...,
  port=...)``), so it is written down once here and ``test_catalog`` checks it against
  the source.
* From that table everything else is computed: the environment names a process reads
  (``model_fields``, respecting prefixes and aliases), which of them a container must
  set (no default, or a default that only works on one machine: loopback), the
  validation of a whole environment with pydantic itself, and the routes of each
  listener taken from the app objects (``app.routes``), so a probe can be matched
  against the route table the process will really serve.
"""

from __future__ import annotations

import functools
import importlib
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, AliasPath, ValidationError
from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
# The process kinds that run for as long as the system does (compose and every overlay
# must run each of them).
SERVICE_SCRIPTS = (
    "gateway",
    "sweeps-api",
    "sweeps-worker",
    "sweeps-supervisor",
    "contracts-api",
    "contracts-dispatcher",
)

LOOPBACK = re.compile(r"^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$")
_LOOPBACK_IN_URL = re.compile(r"://([^/@]*@)?(127\.\d+\.\d+\.\d+|localhost|\[::1\])([:/]|$)")
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|TOKEN|CREDENTIAL|_KEY$|^KEY$)")
"""Names whose values are secrets: never committed except as an obvious placeholder."""


def import_string(path: str) -> Any:
    module, _, attribute = path.partition(":")
    target: Any = importlib.import_module(module)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


# --------------------------------------------------------------------------- scripts


def workspace_members() -> list[Path]:
    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    return [REPO / member for member in root["tool"]["uv"]["workspace"]["members"]]


@functools.cache
def console_scripts() -> dict[str, str]:
    """``{script: "module:function"}`` over every workspace member's pyproject.toml."""
    scripts: dict[str, str] = {}
    for member in [REPO, *workspace_members()]:
        project = tomllib.loads((member / "pyproject.toml").read_text()).get("project", {})
        for name, target in project.get("scripts", {}).items():
            if name in scripts:
                raise AssertionError(f"console script {name!r} is declared twice")
            scripts[name] = target
    return scripts


# --------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class Listener:
    """A socket a process opens: ``host_setting:port_setting``; ``app`` builds the ASGI
    app served there from the process's settings (None: not HTTP)."""

    name: str
    host_setting: str
    port_setting: str
    app: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class Process:
    script: str
    settings_path: str
    listeners: tuple[Listener, ...] = ()
    grace_setting: str | None = None
    """Setting holding the SIGTERM grace (seconds), or None."""
    grace_constant: str | None = None
    """``module:NAME`` of a fixed SIGTERM grace, for a process without a setting."""
    extra_env: Mapping[str, str] = field(default_factory=dict)
    """Variables read with ``os.environ`` outside the settings class -> where."""
    deploy_required: tuple[str, ...] = ()
    """Settings whose default only works on a developer's machine although it is not a
    loopback literal (e.g. the gateway's service URLs default to 127.0.0.1:<port>)."""
    dependency_routes: tuple[str, ...] = ()
    """Routes that answer from the process's dependencies (database, Redis): fine for
    readiness, wrong for liveness (a database blip would restart every replica)."""
    unused: tuple[str, ...] = ()
    """Settings the class inherits but the process never reads (``test_catalog`` checks
    that its package never names them): not required, whatever their default."""
    needs_packages: tuple[str, ...] = ()
    """Importable distributions the process needs that no workspace member declares
    (only a dev dependency group brings them)."""

    @property
    def settings_class(self) -> type[BaseSettings]:
        cls = import_string(self.settings_path)
        assert issubclass(cls, BaseSettings), self.settings_path
        return cls

    def env_names(self) -> dict[str, str]:
        """``{environment variable: field name}`` of the settings class."""
        return settings_env_names(self.settings_class)

    def known_env(self) -> set[str]:
        return set(self.env_names()) | set(self.extra_env)

    def required_env(self) -> dict[str, str]:
        """``{variable: why}`` a container deployment must set."""
        return deploy_required(self)

    def grace_seconds(self, configured: Mapping[str, str | None]) -> float | None:
        """The SIGTERM grace with ``configured`` values (a setting's default otherwise)."""
        if self.grace_constant is not None:
            return float(import_string(self.grace_constant))
        if self.grace_setting is None:
            return None
        value = configured.get(self.grace_setting)
        if value is not None:
            return float(value)
        default = self.settings_class.model_fields[self.grace_setting].default
        return float(default)


def _app_factory(path: str) -> Callable[[Any], Any]:
    def build(settings: Any) -> Any:
        return import_string(path)(settings)

    return build


def _health_app(path: str) -> Callable[[Any], Any]:
    """``health_app(loop_object)`` only closes over its argument: the routes are built
    without it, so None stands in for the supervisor/worker/dispatcher."""

    def build(settings: Any) -> Any:
        return import_string(path)(None)

    return build


def _inbox_app(settings: Any) -> Any:
    from rcm_kit.smtp_sink import inbox_app

    return inbox_app(Path("/nonexistent/mail"))


PROCESSES: dict[str, Process] = {
    process.script: process
    for process in (
        Process(
            "gateway",
            "gateway.config:GatewaySettings",
            (
                Listener(
                    "http", "GATEWAY_HOST", "GATEWAY_PORT", _app_factory("gateway.app:create_app")
                ),
            ),
            grace_constant="rcm_kit.web:HTTP_SHUTDOWN_GRACE_SECONDS",
            deploy_required=("SWEEPS_API_URL", "CONTRACTS_API_URL"),
            # CommonSettings' stores: "The gateway opens no database" (gateway/config.py).
            unused=("DATABASE_URL", "REDIS_URL"),
        ),
        Process(
            "sweeps-api",
            "eligibility_sweeps.config:Settings",
            (
                Listener(
                    "http",
                    "SWEEPS_API_HOST",
                    "SWEEPS_API_PORT",
                    _app_factory("eligibility_sweeps.app:create_app"),
                ),
            ),
            grace_constant="rcm_kit.web:HTTP_SHUTDOWN_GRACE_SECONDS",
            dependency_routes=("/readyz",),
        ),
        Process(
            "sweeps-supervisor",
            "eligibility_sweeps.supervisor.config:SupervisorSettings",
            (
                Listener(
                    "health",
                    "SWEEPS_SUPERVISOR_HOST",
                    "SWEEPS_SUPERVISOR_HEALTH_PORT",
                    _health_app("eligibility_sweeps.supervisor.main:health_app"),
                ),
            ),
            grace_setting="SWEEPS_SUPERVISOR_SHUTDOWN_GRACE_SECONDS",
        ),
        Process(
            "sweeps-worker",
            "eligibility_sweeps.worker.settings:WorkerSettings",
            (
                Listener(
                    "health",
                    "SWEEPS_WORKER_HOST",
                    "SWEEPS_WORKER_HEALTH_PORT",
                    _health_app("eligibility_sweeps.worker.main:health_app"),
                ),
            ),
            grace_setting="SWEEPS_WORKER_SHUTDOWN_GRACE_SECONDS",
        ),
        Process(
            "contracts-api",
            "contract_registry.config:Settings",
            (
                Listener(
                    "http",
                    "CONTRACTS_API_HOST",
                    "CONTRACTS_API_PORT",
                    _app_factory("contract_registry.app:create_app"),
                ),
            ),
            grace_constant="rcm_kit.web:HTTP_SHUTDOWN_GRACE_SECONDS",
            dependency_routes=("/readyz",),
        ),
        Process(
            "contracts-dispatcher",
            "contract_registry.config:DispatcherSettings",
            (
                Listener(
                    "health",
                    "DISPATCHER_HOST",
                    "DISPATCHER_HEALTH_PORT",
                    _health_app("contract_registry.dispatcher:health_app"),
                ),
            ),
            grace_setting="CONTRACT_EXPIRY_SHUTDOWN_GRACE_SECONDS",
        ),
        Process(
            "clearinghouse-sandbox",
            "clearinghouse_sandbox.config:Settings",
            (
                Listener(
                    "http",
                    "SANDBOX_HOST",
                    "SANDBOX_PORT",
                    # Its courier's HTTP client opens no connection until a delivery.
                    _app_factory("clearinghouse_sandbox.app:create_app"),
                ),
            ),
            grace_constant="clearinghouse_sandbox.app:SHUTDOWN_GRACE_SECONDS",
        ),
        Process(
            "rcm",
            "rcm_kit.cli:CliSettings",
            extra_env={
                # rcm seed-demo: the demo trading partner's endpoint.
                "CLEARINGHOUSE_SANDBOX_URL": "eligibility_sweeps/seed.py",
            },
        ),
        Process(
            "rcm-smtp-sink",
            "rcm_kit.smtp_sink:SinkSettings",
            (
                Listener("smtp", "SMTP_SINK_HOST", "SMTP_PORT"),
                Listener("inbox", "SMTP_SINK_HOST", "SMTP_SINK_WEB_PORT", _inbox_app),
            ),
            needs_packages=("aiosmtpd",),
        ),
    )
}


# --------------------------------------------------------------------------- settings


def settings_env_names(cls: type[BaseSettings]) -> dict[str, str]:
    """``{environment variable: field}``: ``env_prefix`` + name, or the field's aliases."""
    prefix = cls.model_config.get("env_prefix", "") or ""
    case_sensitive = bool(cls.model_config.get("case_sensitive", False))
    names: dict[str, str] = {}
    for name, info in cls.model_fields.items():
        alias = info.validation_alias or info.alias
        if isinstance(alias, str):
            candidates = [alias]
        elif isinstance(alias, AliasChoices):
            candidates = [c for c in alias.choices if isinstance(c, str)]
        elif isinstance(alias, AliasPath):
            candidates = [str(alias.path[0])]
        else:
            candidates = [prefix + name]
        for candidate in candidates:
            names[candidate if case_sensitive else candidate.upper()] = name
    return names


def _is_loopback_value(value: object) -> bool:
    if not isinstance(value, str):
        return False
    return bool(LOOPBACK.match(value) or _LOOPBACK_IN_URL.search(value))


def deploy_required(process: Process) -> dict[str, str]:
    """Variables a container must set: fields with no default, fields whose default is
    a loopback address or URL (inside a container loopback is the container itself),
    the process's explicit ``deploy_required``; and, for ``rcm``, DATABASE_URL and
    REDIS_URL (without both it probes localhost and the embedded dev servers)."""
    cls = process.settings_class
    by_field = {field_name: env for env, field_name in process.env_names().items()}
    bind_hosts = {listener.host_setting for listener in process.listeners}
    required: dict[str, str] = {}
    for name, info in cls.model_fields.items():
        env = by_field[name]
        if env in process.unused:
            continue
        if info.is_required():
            required[env] = "has no default"
        elif env in bind_hosts:
            required[env] = (
                f"defaults to {info.default!r}: bind 0.0.0.0 (or ::) so the process is "
                "reachable from outside its container"
            )
        elif _is_loopback_value(info.default):
            required[env] = f"defaults to {info.default!r}, which in a container is itself"
    for env in process.deploy_required:
        default = cls.model_fields[process.env_names()[env]].default
        required[env] = f"defaults to {default!r}, i.e. 127.0.0.1 (see its settings class)"
    if process.script == "rcm":
        for env in ("DATABASE_URL", "REDIS_URL"):
            required[env] = "rcm looks for local or embedded servers unless both are set"
    return required


# Stand-ins for values the files do not hold (secrets, operator copies of examples).
_SYNTHETIC: dict[str, str] = {
    "DATABASE_URL": "postgresql://rcm:secret@db.example:5432/rcm",
    "REDIS_URL": "redis://redis.example:6379/0",
    # A valid Fernet key (URL-safe base64 of 32 bytes).
    "SECRETS_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    "JWT_JWKS_URL": "https://idp.example/.well-known/jwks.json",
    "SMTP_USERNAME": "relay-user",
    "SANDBOX_INBOUND_URL": "http://gateway.example/api/v1/eligibility/inbound",
    "SMTP_FROM": "RCM <alerts@example.com>",
}


def synthetic_value(name: str) -> str:
    return _SYNTHETIC.get(name, "s" * 48)


def _isolated(cls: type[BaseSettings]) -> type[BaseSettings]:
    """``cls`` reading its init arguments only (not this test process's environment)."""

    def sources(owner: Any, settings_cls: Any, init_settings: Any, **rest: Any) -> tuple[Any, ...]:
        return (init_settings,)

    return type(
        f"Isolated{cls.__name__}",
        (cls,),
        {"settings_customise_sources": classmethod(sources), "__module__": __name__},
    )


def build_settings(process: Process, env: Mapping[str, str | None]) -> BaseSettings:
    """The process's settings from ``env`` alone (None: provided, value unknown, so a
    stand-in). Raises ``pydantic.ValidationError`` as the process would at start."""
    names = process.env_names()
    values: dict[str, str] = {}
    for variable, value in env.items():
        if variable not in names:
            continue
        values[names[variable]] = synthetic_value(variable) if value is None else value
    return _isolated(process.settings_class)(**values)


def validation_problems(process: Process, env: Mapping[str, str | None]) -> list[str]:
    """Why the process would refuse to start with ``env`` (empty: it starts)."""
    try:
        build_settings(process, env)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            where = ".".join(str(part) for part in item["loc"]) or "settings"
            problems.append(f"{where}: {item['msg'].removeprefix('Value error, ')}")
        return problems
    return []


def effective(process: Process, env: Mapping[str, str | None], variable: str) -> Any:
    """A setting's value with ``env`` applied (its default when not given)."""
    cls = process.settings_class
    field_name = process.env_names()[variable]
    if variable in env and env[variable] is not None:
        try:
            return getattr(build_settings(process, env), field_name)
        except ValidationError:
            return env[variable]
    return cls.model_fields[field_name].default


# --------------------------------------------------------------------------- routes


@dataclass(frozen=True)
class Bound:
    """A listener with the port it gets from a deployment's environment."""

    process: Process
    listener: Listener
    port: int

    @property
    def http(self) -> bool:
        return self.listener.app is not None


def bound_listeners(process: Process, env: Mapping[str, str | None]) -> list[Bound]:
    return [
        Bound(process, listener, int(effective(process, env, listener.port_setting)))
        for listener in process.listeners
    ]


@functools.cache
def _app(script: str, listener_name: str) -> Any:
    process = PROCESSES[script]
    listener = next(item for item in process.listeners if item.name == listener_name)
    assert listener.app is not None
    settings = build_settings(process, {"JWT_SECRET": None})
    return listener.app(settings)


def _flatten(routes: Iterable[Any], prefix: str = "") -> list[str]:
    paths: list[str] = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:  # FastAPI's lazily included router
            paths += _flatten(included.routes, prefix + route.include_context.prefix)
        elif hasattr(route, "path"):
            paths.append(prefix + route.path)
    return paths


def route_paths(process: Process, listener: Listener) -> list[str]:
    """Every path the listener's app routes (for messages)."""
    return _flatten(_app(process.script, listener.name).routes)


def has_route(process: Process, listener: Listener, path: str, method: str | None = "GET") -> bool:
    """Whether the real app of ``listener`` routes ``method path`` (None: any method):
    its own routes, or, for the gateway, a path it proxies to a service."""
    from starlette.routing import Match

    path = path.split("?", 1)[0] or "/"
    app = _app(process.script, listener.name)
    table = getattr(app, "route_table", None)
    if table is not None and table.match(path) is not None:
        return True
    scope = {
        "type": "http",
        "path": path,
        "method": method or "GET",
        "root_path": "",
        "headers": [],
    }
    for route in app.routes:
        match, _ = route.matches(scope)
        if match == Match.FULL or (method is None and match == Match.PARTIAL):
            return True
    return False


# --------------------------------------------------------------------------- commands


WRAPPERS = {"tini", "dumb-init", "docker-init", "--", "exec"}


@dataclass(frozen=True)
class Invocation:
    """A container's command resolved to a console script (``process``) or why not."""

    argv: tuple[str, ...]
    process: Process | None
    problem: str | None = None

    @property
    def label(self) -> str:
        if self.process is None:
            return " ".join(self.argv)
        if self.process.script == "rcm":
            words = [a for a in self.argv[1:] if not a.startswith("-")][:2]
            return " ".join(["rcm", *words[:1]])
        return self.process.script


def resolve_command(argv: Iterable[str]) -> Invocation:
    """``argv`` (entrypoint + command, as the runtime execs it) -> the console script."""
    args = [str(a) for a in argv]
    while args and Path(args[0]).name in WRAPPERS:
        args = args[1:]
    if not args:
        return Invocation((), None, "no command at all (the image's default would run)")
    if Path(args[0]).name in {"sh", "bash"}:
        if len(args) != 3 or args[1] != "-c":
            return Invocation(tuple(args), None, f"runs a shell without -c SCRIPT: {args}")
        return resolve_shell(args[2])
    name = Path(args[0]).name
    if "/" in args[0] and Path(args[0]).parent.name != "bin":
        return Invocation(tuple(args), None, f"{args[0]!r} is not in a bin/ directory")
    scripts = console_scripts()
    if name not in scripts:
        return Invocation(
            tuple(args),
            None,
            f"{name!r} is not a console script of the workspace (known: {', '.join(sorted(scripts))})",
        )
    process = PROCESSES.get(name)
    if process is None:
        return Invocation(tuple(args), None, f"console script {name!r} has no catalog entry")
    problem = check_arguments(name, args[1:])
    return Invocation((name, *args[1:]), process, problem)


SHELL_UTILITIES = {"echo", "true", "false", "test", "[", "exit", "grep", "printf", "sleep", "set"}


def resolve_shell(script: str) -> Invocation:
    """``sh -c SCRIPT``: every simple command is a console script (all the same one, so
    the container is one process kind) or a harmless shell utility."""
    import shlex

    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    redirect = False
    for token in lexer:
        if redirect:  # the file a redirection names is no argument of the command
            redirect = False
        elif token in {">", ">>", "<", ">|"}:
            redirect = True
        elif token in {";", "&&", "||", "|", "&", "(", ")"}:
            commands.append([])
        else:
            commands[-1].append(token)
    found: list[Invocation] = []
    for words in filter(None, commands):
        while words and (re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]) or words[0] == "exec"):
            words = words[1:]
        if not words or words[0] in SHELL_UTILITIES:
            continue
        invocation = resolve_command(words)
        if invocation.process is None or invocation.problem:
            return Invocation(tuple(words), None, f"in sh -c {script!r}: {invocation.problem}")
        found.append(invocation)
    scripts = {invocation.process.script for invocation in found if invocation.process}
    if len(scripts) != 1:
        return Invocation(
            ("sh", "-c", script),
            None,
            f"sh -c {script!r} runs {len(scripts)} different console scripts (want exactly one)",
        )
    return Invocation(found[-1].argv, found[-1].process, None)


def check_arguments(script: str, args: list[str]) -> str | None:
    """Parse ``args`` the way the script would (its click/typer parser), without running it."""
    if script != "rcm":
        if args:
            return f"{script} takes no arguments (its settings come from the environment): {args}"
        return None
    import contextlib
    import io

    import typer

    from rcm_kit.cli import app

    def rest(context: Any) -> list[str]:
        protected = context.__dict__.get("_protected_args")
        if protected is None:
            protected = context.__dict__.get("protected_args", [])
        return [*protected, *context.args]

    command: Any = typer.main.get_command(app)
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            context = command.make_context("rcm", list(args), resilient_parsing=False)
            words = rest(context)
            while hasattr(command, "list_commands"):  # a group
                if not words:
                    return "rcm needs a command (rcm migrate, rcm seed-demo --tenant ...)"
                sub = command.get_command(context, words[0])
                if sub is None:
                    return f"rcm has no command {words[0]!r}"
                context = sub.make_context(words[0], words[1:], parent=context)
                command = sub
                words = rest(context)
    except Exception as error:
        if hasattr(error, "format_message"):  # click's UsageError and kin
            message = error.format_message() or "no command given (it prints its help)"
            return f"rcm {' '.join(args)}: {message}"
        if type(error).__name__ == "Exit":  # --help
            return None
        raise
    return None


# --------------------------------------------------------------------------- secrets

PLACEHOLDER = re.compile(
    r"(change[-_ ]?me|replace|placeholder|example|dummy|not[-_]a[-_]secret|insecure|"
    r"dev[-_]only|<[^>]+>|\$\{[^}]+\}|\$\(|xxx|todo|fixme|secret-here)",
    re.IGNORECASE,
)


def secret_in_value(name: str, value: str | None) -> str | None:
    """A committed value that looks like a real secret (None: fine)."""
    if value is None or value == "":
        return None
    if SECRET_NAME.search(name.upper()) and not name.upper().endswith("_FILE"):
        # (``..._FILE`` names where a secret is read from, not the secret.)
        if PLACEHOLDER.search(value):
            return None
        return f"{name} holds a value that is not an obvious placeholder"
    match = re.search(r"://[^/:@\s]+:([^@/\s]+)@", value)
    if match and not PLACEHOLDER.search(match.group(1)):
        return f"{name} embeds a password that is not an obvious placeholder"
    return None


def parse_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines (docker/kustomize .env syntax): comments, blanks, quotes."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        if "=" not in line:
            raise ValueError(f"{path}:{number}: not KEY=value: {raw!r}")
        key, _, value = line.partition("=")
        key = key.strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"{path}:{number}: {key!r} is not a variable name")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values
