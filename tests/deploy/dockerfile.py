"""A Dockerfile reader for static checks: stages, their inherited state, copies.

Enough of BuildKit's syntax for the checks in ``test_docker``: line continuations,
comments and parser directives, ``ARG`` (global and per stage) and ``ENV`` expansion
(``$X``, ``${X}``, ``${X:-default}``, ``${X:+alt}``), exec and shell forms, ``FROM ...
AS name`` with stage inheritance (ENV, USER, WORKDIR, CMD, ENTRYPOINT, HEALTHCHECK), and
``COPY``/``ADD`` with their flags. Heredocs are refused loudly (not needed yet).

``DockerIgnore`` matches paths like Docker's pattern matcher: ``*``, ``?``, ``**``,
``!`` exceptions, last match wins, a pattern matching a parent directory excludes
everything below it.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_VAR = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-+])?(?P<word>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def expand(text: str, scope: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        value = scope.get(name)
        op = match.group("op")
        if op in (":-", "-"):
            return value if value else expand(match.group("word"), scope)
        if op in (":+", "+"):
            return expand(match.group("word"), scope) if value else ""
        return value if value is not None else ""

    return _VAR.sub(replace, text)


@dataclass
class Instruction:
    keyword: str
    rest: str
    line: int

    def exec_form(self) -> list[str] | None:
        text = self.rest.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                return None
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
        return None


@dataclass
class Copy:
    sources: list[str]
    dest: str
    from_stage: str | None
    line: int
    keyword: str


@dataclass
class Healthcheck:
    argv: list[str] | None  # None: HEALTHCHECK NONE
    shell: bool
    line: int


@dataclass
class Stage:
    index: int
    name: str | None
    base: str
    parent: Stage | None
    line: int
    args: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    """ENV set in this stage itself."""
    user: str | None = None
    workdir: str | None = None
    cmd: list[str] | None = None
    entrypoint: list[str] | None = None
    cmd_shell: bool = False
    healthcheck: Healthcheck | None = None
    exposes: list[str] = field(default_factory=list)
    copies: list[Copy] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    cmd_reset: bool = False

    @property
    def label(self) -> str:
        return self.name or f"#{self.index}"

    def chain(self) -> list[Stage]:
        """This stage and its ancestors in this Dockerfile, base first."""
        stages: list[Stage] = []
        stage: Stage | None = self
        while stage is not None:
            stages.append(stage)
            stage = stage.parent
        return stages[::-1]

    def effective_env(self) -> dict[str, str]:
        env: dict[str, str] = {"PATH": DEFAULT_PATH}
        for stage in self.chain():
            env.update(stage.env)
        return env

    def effective_user(self) -> str | None:
        for stage in reversed(self.chain()):
            if stage.user is not None:
                return stage.user
        return None

    def effective_workdir(self) -> str:
        for stage in reversed(self.chain()):
            if stage.workdir is not None:
                return stage.workdir
        return "/"

    def effective_entrypoint(self) -> list[str] | None:
        for stage in reversed(self.chain()):
            if stage.entrypoint is not None:
                return stage.entrypoint
        return None

    def effective_cmd(self) -> list[str] | None:
        for stage in reversed(self.chain()):
            if stage.cmd is not None:
                return stage.cmd
            if stage.cmd_reset:
                return None
        return None

    def effective_healthcheck(self) -> Healthcheck | None:
        for stage in reversed(self.chain()):
            if stage.healthcheck is not None:
                return stage.healthcheck
        return None

    def all_copies(self) -> list[Copy]:
        return [copy for stage in self.chain() for copy in stage.copies]

    def all_runs(self) -> list[str]:
        return [run for stage in self.chain() for run in stage.runs]


@dataclass
class Dockerfile:
    path: Path
    stages: list[Stage]
    global_args: dict[str, str]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"{self.path}: no stage named {name!r}")

    @property
    def last(self) -> Stage:
        return self.stages[-1]

    def copy_sources(self) -> set[str]:
        """Stages used as ``COPY --from`` sources."""
        return {
            copy.from_stage for stage in self.stages for copy in stage.copies if copy.from_stage
        }


def _logical_lines(text: str) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    buffer = ""
    start = 0
    directives_done = False
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not buffer and stripped.startswith("#"):
            if not directives_done and re.match(r"#\s*escape\s*=", stripped):
                raise ValueError(f"line {number}: an escape directive is not supported")
            continue
        if buffer and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped:
            directives_done = True
        if not buffer:
            start = number
            if not stripped:
                continue
        if raw.rstrip().endswith("\\"):
            buffer += raw.rstrip()[:-1] + " "
            continue
        buffer += raw
        lines.append((start, buffer.strip()))
        buffer = ""
    if buffer.strip():
        lines.append((start, buffer.strip()))
    return lines


def _flags(words: list[str]) -> tuple[dict[str, str], list[str]]:
    flags: dict[str, str] = {}
    while words and words[0].startswith("--"):
        name, _, value = words[0][2:].partition("=")
        flags[name] = value
        words = words[1:]
    return flags, words


def _parse_env(rest: str) -> dict[str, str]:
    words = shlex.split(rest, posix=True)
    if words and "=" not in words[0]:  # legacy ENV key value
        return {words[0]: " ".join(words[1:])}
    values = {}
    for word in words:
        key, _, value = word.partition("=")
        values[key] = value
    return values


def parse(path: Path) -> Dockerfile:
    text = path.read_text()
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    by_name: dict[str, Stage] = {}
    stage: Stage | None = None
    for line, logical in _logical_lines(text):
        keyword, _, rest = logical.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        if (
            "<<" in rest
            and re.search(r"<<-?\s*['\"]?[A-Za-z_]+", rest)
            and keyword in ("RUN", "COPY")
        ):
            raise ValueError(f"{path}:{line}: heredocs are not supported by this reader")
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            name = name.strip()
            if stage is None:
                global_args[name] = default.strip().strip('"')
            else:
                value = default.strip().strip('"') if default else global_args.get(name, "")
                stage.args[name] = expand(value, {**stage.args, **stage.effective_env()})
            continue
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--platform")]
            base = expand(words[0], global_args)
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            parent = by_name.get(base)
            stage = Stage(len(stages), name, base, parent, line)
            stages.append(stage)
            if name:
                by_name[name] = stage
            continue
        if stage is None:
            raise ValueError(f"{path}:{line}: {keyword} before the first FROM")
        scope = {**stage.effective_env(), **stage.args}
        instruction = Instruction(keyword, rest, line)
        if keyword == "ENV":
            for key, value in _parse_env(rest).items():
                stage.env[key] = expand(value, {**scope, **stage.env})
        elif keyword == "USER":
            stage.user = expand(rest, scope)
        elif keyword == "WORKDIR":
            workdir = expand(rest, scope)
            stage.workdir = str(PurePosixPath(stage.effective_workdir()) / workdir)
        elif keyword in ("CMD", "ENTRYPOINT"):
            argv = instruction.exec_form()
            shell = argv is None
            if argv is None:
                argv = ["/bin/sh", "-c", rest]
            if keyword == "CMD":
                stage.cmd, stage.cmd_shell = argv, shell
            else:
                stage.entrypoint = argv
                if stage.cmd is None:
                    stage.cmd_reset = True  # Docker resets an inherited CMD
        elif keyword == "HEALTHCHECK":
            words = rest.split()
            while words and words[0].startswith("--"):
                words = words[1:]
            if words and words[0].upper() == "NONE":
                stage.healthcheck = Healthcheck(None, False, line)
            else:
                body = rest[rest.upper().index("CMD") + 3 :].strip()
                argv = Instruction("CMD", body, line).exec_form()
                stage.healthcheck = Healthcheck(
                    argv if argv is not None else ["/bin/sh", "-c", body], argv is None, line
                )
        elif keyword == "EXPOSE":
            stage.exposes += [expand(word, scope) for word in rest.split()]
        elif keyword in ("COPY", "ADD"):
            argv = instruction.exec_form()
            words = argv if argv is not None else shlex.split(rest)
            flags, words = _flags(words)
            words = [expand(word, scope) for word in words]
            stage.copies.append(Copy(words[:-1], words[-1], flags.get("from"), line, keyword))
        elif keyword == "RUN":
            stage.runs.append(expand(rest, scope))
        elif keyword in ("LABEL", "STOPSIGNAL", "SHELL", "VOLUME", "ONBUILD", "MAINTAINER"):
            pass
        else:
            raise ValueError(f"{path}:{line}: unknown instruction {keyword}")
    if not stages:
        raise ValueError(f"{path}: no FROM")
    return Dockerfile(path, stages, global_args)


# --------------------------------------------------------------------------- .dockerignore


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
                out += "(?:.*/)?"
            else:
                out += ".*"
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.find("]", i)
            if end == -1:
                out += re.escape(char)
            else:
                out += "[" + pattern[i + 1 : end].replace("!", "^", 1) + "]"
                i = end
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(char)
        i += 1
    return re.compile(out + r"\Z")


@dataclass
class DockerIgnore:
    path: Path | None
    patterns: list[tuple[bool, re.Pattern[str], str]]

    @classmethod
    def load(cls, path: Path | None) -> DockerIgnore:
        patterns = []
        if path is not None and path.exists():
            for raw in path.read_text().splitlines():
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                negated = line.startswith("!")
                line = line[1:].strip() if negated else line
                cleaned = str(PurePosixPath("/" + line)).lstrip("/") or "."
                patterns.append((negated, _pattern_regex(cleaned), line))
        return cls(path, patterns)

    def excluded(self, relative: str) -> bool:
        """Whether ``relative`` (to the build context) is left out of the context."""
        relative = str(PurePosixPath(relative))
        parts = relative.split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        excluded = False
        for negated, regex, _ in self.patterns:
            if any(regex.match(candidate) for candidate in candidates):
                excluded = not negated
        return excluded


def find_dockerignore(dockerfile: Path, context: Path) -> Path | None:
    """BuildKit reads ``<Dockerfile>.dockerignore`` beside the Dockerfile first, then the
    context's ``.dockerignore``."""
    beside = dockerfile.with_name(dockerfile.name + ".dockerignore")
    if beside.exists():
        return beside
    root = context / ".dockerignore"
    return root if root.exists() else None


# --------------------------------------------------------------------------- what an image has

BASE_PROGRAMS = {
    # python:3.x-slim (Debian): the interpreter, a shell and coreutils.
    "python": {
        "python",
        "python3",
        "sh",
        "bash",
        "sleep",
        "cat",
        "env",
        "kill",
        "true",
        "false",
        "test",
        "echo",
    },
}


def base_image(stage: Stage) -> str:
    return stage.chain()[0].base


def installed_packages(stage: Stage) -> set[str]:
    """Debian/Alpine packages a ``RUN apt-get install`` / ``apk add`` puts in the stage."""
    packages: set[str] = set()
    for run in stage.all_runs():
        for match in re.finditer(
            r"(?:apt-get|apt)\s+install\s+([^&;|]+)|apk\s+add\s+([^&;|]+)", run
        ):
            words = (match.group(1) or match.group(2)).split()
            packages |= {w for w in words if not w.startswith("-")}
    return packages


def venv_dirs(dockerfile: Dockerfile) -> set[str]:
    """Where the Dockerfile builds virtualenvs (uv's project environment)."""
    found = set()
    for stage in dockerfile.stages:
        env = stage.effective_env()
        for name in ("UV_PROJECT_ENVIRONMENT", "VIRTUAL_ENV"):
            if env.get(name):
                found.add(env[name].rstrip("/"))
        if any(re.search(r"\buv\s+sync\b", run) for run in stage.runs) and not env.get(
            "UV_PROJECT_ENVIRONMENT"
        ):
            found.add(str(PurePosixPath(stage.effective_workdir()) / ".venv"))
    return found


def scripts_on_path(dockerfile: Dockerfile, stage: Stage) -> bool:
    """The workspace's console scripts are on the stage's PATH: a virtualenv the
    Dockerfile builds is in (or copied into) the stage and its bin/ is on PATH."""
    path = stage.effective_env().get("PATH", DEFAULT_PATH).split(":")
    present = {copy.dest.rstrip("/") for copy in stage.all_copies()}
    built_here = any(re.search(r"\buv\s+sync\b", run) for run in stage.all_runs())
    for venv in venv_dirs(dockerfile):
        if f"{venv}/bin" in path and (venv in present or built_here):
            return True
    return False


def programs(dockerfile: Dockerfile, stage: Stage, scripts: set[str]) -> set[str]:
    """Programs a health check or a hook can run in the stage's image."""
    base = base_image(stage)
    available = set(next((v for k, v in BASE_PROGRAMS.items() if base.startswith(k)), {"sh"}))
    available |= installed_packages(stage)
    if scripts_on_path(dockerfile, stage):
        available |= scripts
    return available


def has_package(dockerfile: Dockerfile, package: str) -> bool:
    """Whether the image gets ``package``: named in a RUN, or a ``uv sync`` that keeps
    the dev dependency group (where the workspace's dev-only packages are)."""
    runs = [run for stage in dockerfile.stages for run in stage.runs]
    if any(re.search(rf"\b{re.escape(package)}\b", run) for run in runs):
        return True
    syncs = [run for run in runs if re.search(r"\buv\s+sync\b", run)]
    return bool(syncs) and not any("--no-dev" in run or "--only-group" in run for run in syncs)


# --------------------------------------------------------------------------- checks


def runnable_stages(dockerfile: Dockerfile, targets: set[str]) -> list[Stage]:
    """Stages an image is made of: the last (default target), named build targets, and
    every stage with a command of its own that is not only a ``COPY --from`` source."""
    sources = dockerfile.copy_sources()
    return [
        stage
        for stage in dockerfile.stages
        if stage is dockerfile.last
        or stage.name in targets
        or (stage.name not in sources and (stage.effective_cmd() or stage.effective_entrypoint()))
    ]


def stage_argv(stage: Stage) -> list[str]:
    return [*(stage.effective_entrypoint() or []), *(stage.effective_cmd() or [])]


def check_dockerfile(path: Path, context: Path, targets: set[str] | None = None) -> list[str]:
    """Static checks of one Dockerfile built with ``context``; ``targets``: the stages
    compose (or a build script) names."""
    from tests.deploy.catalog import PROCESSES, bound_listeners, console_scripts, resolve_command
    from tests.deploy.checks import RUNTIME_ENV, check_healthcheck_command

    name = f"{path.relative_to(context) if context in path.parents else path}"
    try:
        dockerfile = parse(path)
    except ValueError as error:
        return [f"{name}: {error}"]
    problems: list[str] = []
    ignore_file = find_dockerignore(path, context)
    ignore = DockerIgnore.load(ignore_file)
    if ignore_file is None:
        problems.append(
            f"{name}: no .dockerignore (in the build context {context} or as "
            f"{path.name}.dockerignore beside it): .venv, .git and .data would be sent"
        )
    else:
        for local in (".venv", ".git", ".data"):
            if not ignore.excluded(f"{local}/anything"):
                problems.append(f"{ignore_file.name}: does not exclude {local}/")

    names = {stage.name for stage in dockerfile.stages if stage.name}
    for stage in dockerfile.stages:
        for copy in stage.copies:
            where = f"{name}:{copy.line} ({stage.label})"
            if copy.from_stage:
                if copy.from_stage not in names and not re.search(r"[/:.]", copy.from_stage):
                    problems.append(
                        f"{where}: {copy.keyword} --from={copy.from_stage}: no such stage"
                    )
                continue
            for source in copy.sources:
                if re.match(r"^https?://", source):
                    continue
                relative = (
                    str(PurePosixPath(source.lstrip("/"))) if source not in (".", "./") else "."
                )
                matches = (
                    sorted(context.glob(relative))
                    if any(c in relative for c in "*?[")
                    else ([context / relative] if (context / relative).exists() else [])
                )
                if not matches:
                    problems.append(
                        f"{where}: {copy.keyword} source {source!r} does not exist in the context"
                    )
                    continue
                kept = [
                    m
                    for m in matches
                    if m == context or not ignore.excluded(str(m.relative_to(context)))
                ]
                if not kept:
                    problems.append(
                        f"{where}: {copy.keyword} source {source!r} is excluded by "
                        f"{ignore_file.name if ignore_file else '.dockerignore'}"
                    )

    scripts = set(console_scripts())
    for stage in runnable_stages(dockerfile, targets or set()):
        where = f"{name} stage {stage.label}"
        user = stage.effective_user()
        if user is None:
            problems.append(f"{where}: no USER: the process would run as root")
        else:
            account = user.split(":")[0]
            if account in ("root", "0"):
                problems.append(f"{where}: USER {user} is root")
            elif not account.isdigit() and not any(
                re.search(rf"\b(useradd|adduser)\b[^;&|]*\b{re.escape(account)}\b", run)
                for run in stage.all_runs()
            ):
                problems.append(f"{where}: USER {user} is never created (useradd/adduser)")
        if not scripts_on_path(dockerfile, stage):
            problems.append(
                f"{where}: the workspace's virtualenv bin/ is not on PATH, so no console "
                "script can be found by name"
            )
        argv = stage_argv(stage)
        invocation = resolve_command(argv) if argv else None
        if invocation is None or invocation.process is None:
            problems.append(
                f"{where}: its command {argv} is not a console script"
                + (f": {invocation.problem}" if invocation and invocation.problem else "")
            )
        elif invocation.problem:
            problems.append(f"{where}: {invocation.problem}")
        process = invocation.process if invocation else None
        env = stage.effective_env()
        for variable in sorted(stage.env):
            if RUNTIME_ENV.match(variable):
                continue
            if process is not None and stage.cmd is not None:
                if variable not in process.known_env():
                    problems.append(
                        f"{where}: ENV {variable} is not a setting of {invocation.label}"
                    )
            elif not any(variable in p.known_env() for p in PROCESSES.values()):
                problems.append(f"{where}: ENV {variable} is not a setting of any process")
        if process is not None:
            for port in stage.exposes:
                number = int(port.split("/")[0])
                listening = {b.port: b for b in bound_listeners(process, env)}
                if number not in listening:
                    problems.append(
                        f"{where}: EXPOSE {port}, but {process.script} listens on {sorted(listening)}"
                    )
            healthcheck = stage.effective_healthcheck()
            if healthcheck is not None and healthcheck.argv is not None:
                problems += check_healthcheck_command(
                    f"{where} HEALTHCHECK",
                    process,
                    env,
                    healthcheck.argv,
                    available=programs(dockerfile, stage, scripts),
                )
        if (process is not None and process.script == "rcm") or stage is dockerfile.last:
            problem = migrations_problem(stage, context)
            if problem:
                problems.append(f"{where}: {problem}")
    return problems


def migrations_problem(stage: Stage, context: Path) -> str | None:
    """``rcm migrate`` finds ``migrations/`` through RCM_MIGRATIONS_DIR, or under its
    working directory (or a parent); the wheels do not carry it."""
    copied = {
        str(PurePosixPath(stage.effective_workdir()) / copy.dest).rstrip("/")
        for copy in stage.all_copies()
        if not copy.from_stage
        and any(
            (context / source).resolve() == (context / "migrations").resolve()
            for source in copy.sources
        )
    }
    if not copied:
        return "rcm needs migrations/ (rcm migrate), which no COPY puts in the image"
    configured = stage.effective_env().get("RCM_MIGRATIONS_DIR")
    if configured:
        if configured.rstrip("/") not in copied:
            return f"RCM_MIGRATIONS_DIR={configured}, but migrations/ is copied to {sorted(copied)}"
        return None
    workdir = PurePosixPath(stage.effective_workdir())
    if not any(
        str(directory / "migrations") in copied for directory in (workdir, *workdir.parents)
    ):
        return (
            f"migrations/ is copied to {sorted(copied)}, not under the working directory {workdir}"
        )
    return None
